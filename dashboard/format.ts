/** How the page writes numbers: Korean grouping, signed changes with arrows, compact volumes. */

export const intFmt = new Intl.NumberFormat("ko-KR")
export const indexFmt = new Intl.NumberFormat("ko-KR", { minimumFractionDigits: 2, maximumFractionDigits: 2 })
export const compactFmt = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 })

export type Direction = "up" | "down" | "flat"

export const direction = (n: number): Direction => (n > 0 ? "up" : n < 0 ? "down" : "flat")

const arrow = (d: Direction) => (d === "up" ? "▲" : d === "down" ? "▼" : "–")

export const pct = (n: number): string => `${n > 0 ? "+" : ""}${n.toFixed(2)}%`

export const signedChange = (n: number, format: Intl.NumberFormat): string =>
  `${arrow(direction(n))} ${format.format(Math.abs(n))}`
