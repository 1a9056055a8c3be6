/** The sector heat map: a tile per sector from `sector_update`; a top mover's click selects its book. */
import { LISTINGS, SECTOR_KO, SECTORS } from "../catalog.js"
import { byId, el } from "../dom.js"
import { compactFmt, direction, pct } from "../format.js"
import type { State } from "../state.js"

interface Tile {
  readonly root: HTMLElement
  readonly percent: HTMLElement
  readonly breadth: HTMLElement
  readonly volume: HTMLElement
  readonly movers: HTMLElement
}

/** Full colour at ±2% (a big day for a whole sector), a faint tint for any move at all. */
const heat = (changePercent: number): string => {
  if (changePercent === 0) return "var(--tile)"
  const strength = Math.round(12 + 78 * Math.min(1, Math.abs(changePercent) / 2))
  const colour = changePercent > 0 ? "var(--up)" : "var(--down)"
  return `color-mix(in srgb, ${colour} ${strength}%, var(--tile))`
}

/** Builds a tile per sector into `#heatmap`; returns the render of one sector. */
export const makeSectors = (state: State, onSelect: (code: string) => void): ((sector: string) => void) => {
  const tiles = new Map<string, Tile>()
  for (const sector of SECTORS) {
    const root = el("div", "tile")
    root.dataset.sector = sector
    const head = el("div", "tile-head")
    head.append(el("span", "tile-name", sector), el("span", "tile-ko", SECTOR_KO[sector]))
    const percent = el("div", "tile-pct", "–")
    const breadth = el("div", "tile-breadth")
    const volume = el("div", "tile-volume")
    const movers = el("ol", "tile-movers")
    root.append(head, percent, breadth, volume, movers)
    byId("heatmap").append(root)
    tiles.set(sector, { root, percent, breadth, volume, movers })
  }

  return (sector) => {
    const tile = tiles.get(sector)
    const s = state.sectors.get(sector)
    if (tile === undefined || s === undefined) return
    tile.root.style.background = heat(s.change_percent)
    tile.root.dataset.pct = String(s.change_percent)
    tile.percent.textContent = pct(s.change_percent)
    tile.breadth.textContent = `▲${s.advancers} ▼${s.decliners} –${s.unchanged}`
    tile.volume.textContent = `vol ${compactFmt.format(s.volume)}`
    tile.movers.replaceChildren(
      ...s.top_movers.slice(0, 3).map((m) => {
        const li = el("li")
        const listing = LISTINGS.get(m.code)
        const name = el("button", "mover", listing?.nameKo ?? m.code)
        name.type = "button"
        name.title = `${listing?.name ?? m.code} (${m.code}): show the order book`
        name.addEventListener("click", () => onSelect(m.code))
        li.append(name, el("span", `mover-pct ${direction(m.change_percent)}`, pct(m.change_percent)))
        return li
      }),
    )
  }
}
