/**
 * Sequence tracking (docs/protocol.md "Server to client"): per session every message is numbered
 * 1, 2, 3, ... without gaps, continuing across a successful restore. A new session (first
 * connection, or a failed restore) starts again at 1.
 */

export interface SequenceCheck {
  /** The number to remember as last seen. */
  readonly last: number
  /** Present when `received` was not `last + 1`. */
  readonly gap: { readonly expected: number; readonly received: number } | undefined
}

/**
 * Checks one received number against the last one seen (0 = nothing seen in this session yet).
 * After a mismatch the tracker follows the server's numbering, so one loss is reported once.
 */
export const checkSequence = (last: number, received: number): SequenceCheck =>
  received === last + 1
    ? { last: received, gap: undefined }
    : { last: received, gap: { expected: last + 1, received } }

/**
 * Where numbering stands when `connected` arrives: a restored session continues from `last`;
 * anything else is a new session whose `connected` should be number 1.
 */
export const lastBeforeConnected = (
  last: number,
  restoringSessionId: string | undefined,
  connectedSessionId: string,
): number => (restoringSessionId !== undefined && restoringSessionId === connectedSessionId ? last : 0)
