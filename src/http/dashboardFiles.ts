/**
 * The dashboard's source files and how its script is bundled: shared by the gateway (dashboard.ts,
 * when it runs from the sources) and `npm run build` (scripts/build.ts). No imports, so the build
 * script loads neither effect nor the HTTP server to read them.
 */

/** The dashboard's sources, relative to the repository root. */
export const DASHBOARD_PAGE = "dashboard/index.html"
/** The stylesheets in cascade order (the narrow-screen overrides in `footer.css` last), served as one. */
export const DASHBOARD_STYLES = ["base", "header", "layout", "panels", "footer"].map(
  (name) => `dashboard/styles/${name}.css`,
)
export const DASHBOARD_ENTRY = "dashboard/main.ts"
/** esbuild reads these too (the nearest one to each input), but does not list them among its inputs. */
export const DASHBOARD_TSCONFIGS = ["tsconfig.json", "dashboard/tsconfig.json"]

export const dashboardBuildOptions = {
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  minify: true,
  // Keep the Korean names readable in the bundle instead of \u escapes.
  charset: "utf8",
} as const

/** The stylesheets joined in order, as served at /assets/dashboard.css. */
export const joinStyles = (read: (file: string) => string): string => DASHBOARD_STYLES.map(read).join("\n")
