/** Connection URLs: `?token=...` always when known, plus `session_id=...` to restore a session. */

export interface UrlParams {
  readonly token?: string | undefined
  readonly sessionId?: string | undefined
}

export const buildUrl = (base: string, params: UrlParams): string => {
  const url = new URL(base)
  // Replace rather than append, so a base URL that already carries them cannot send two values.
  if (params.sessionId !== undefined) url.searchParams.set("session_id", params.sessionId)
  else url.searchParams.delete("session_id")
  if (params.token !== undefined && params.token !== "") url.searchParams.set("token", params.token)
  return url.toString()
}

/** The URL without its token, for error messages and logs. */
export const redactUrl = (url: string): string => {
  try {
    const u = new URL(url)
    if (u.searchParams.has("token")) u.searchParams.set("token", "***")
    return u.toString()
  } catch {
    return "<invalid url>"
  }
}
