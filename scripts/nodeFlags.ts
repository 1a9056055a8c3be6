/**
 * The V8 flags the gateway runs with, wherever it is started: `npm start` (package.json's `start`
 * script), the container image (the Dockerfile's CMD) and the benchmark (bench/lib/server.ts);
 * test/build/ checks that the three agree. They are on node's command line: NODE_OPTIONS does not
 * accept them, and V8 does not support changing them once it runs (`v8.setFlagsFromString`).
 *
 * `--heap-growing-percent=50`: after each full GC, V8 lets the old generation grow to 1.5 times
 * what was live rather than a factor it picks from the recent allocation rate. Just after startup
 * it picked 4.0, so no full GC fell inside a ramp of thousands of connections, and the garbage of
 * their setups stayed in pages the process kept: 9.6-11.7 KB of RSS per idle connection after GC
 * against 9.1-10.2 KB with the flag. It costs a few points of CPU under load; `--optimize-for-size`
 * kept RSS lower still but missed scenario B's p99 target.
 * Figures and commands: docs/performance.md, scenario C.
 */
export const SERVER_NODE_FLAGS: ReadonlyArray<string> = ["--heap-growing-percent=50"]
