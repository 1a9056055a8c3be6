/** The session id kept in `sessionStorage`, so a page reload restores the session too. */

const SESSION_KEY = "quotecast.dashboard.session"

export const readSession = (): string | undefined => {
  try {
    return sessionStorage.getItem(SESSION_KEY) ?? undefined
  } catch {
    return undefined // storage can be disabled; the page then just starts a new session
  }
}

export const saveSession = (id: string | undefined): void => {
  try {
    if (id === undefined) sessionStorage.removeItem(SESSION_KEY)
    else sessionStorage.setItem(SESSION_KEY, id)
  } catch {
    // as above: without storage a reload starts a new session, which is all this costs
  }
}
