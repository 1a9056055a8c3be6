/** The few DOM helpers every panel uses. */

/** An element the markup (`index.html`) must have; a missing one is a bug in the page, said loudly. */
export const byId = (id: string): HTMLElement => {
  const found = document.getElementById(id)
  if (found === null) throw new Error(`dashboard markup has no #${id}`)
  return found
}

export const el = <K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className?: string,
  text?: string,
): HTMLElementTagNameMap[K] => {
  const e = document.createElement(tag)
  if (className !== undefined) e.className = className
  if (text !== undefined) e.textContent = text
  return e
}

const flashColours = (() => {
  const css = getComputedStyle(document.documentElement)
  return {
    up: css.getPropertyValue("--flash-up").trim() || "rgba(239, 68, 68, 0.55)",
    down: css.getPropertyValue("--flash-down").trim() || "rgba(59, 130, 246, 0.55)",
  }
})()

/** A background pulse; the Web Animations API restarts cleanly however often a price moves. */
export const flash = (target: HTMLElement, d: "up" | "down"): void => {
  target.animate([{ backgroundColor: flashColours[d] }, { backgroundColor: "transparent" }], {
    duration: 800,
    easing: "ease-out",
  })
}
