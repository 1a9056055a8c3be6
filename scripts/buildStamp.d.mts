/** Types of scripts/buildStamp.mjs (plain JavaScript, so `npm start` loads no TypeScript loader). */
export declare const DIST: string
export declare const STAMP: string
export declare const SERVER_ENTRY: string
export declare const PUBLIC_DIR: string
export declare const OUTPUTS: ReadonlyArray<string>
export declare const digestOf: (root: string, inputs: ReadonlyArray<string>) => string
export declare const checkBuild: (root: string) => { fresh: true } | { fresh: false; reason: string }
