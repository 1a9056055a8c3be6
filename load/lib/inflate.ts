/**
 * Synchronous inflate for compressed load connections. `ws` inflates on the libuv threadpool
 * behind a 10-job limiter shared by every socket, which collapses near 100,000 msg/s over 1,000
 * compressed connections (STACK.md), so the load client, not the server, would be measured.
 * When the server agreed to `server_no_context_takeover`, every message is an independent raw
 * deflate stream, so it can be inflated on the spot with `inflateRawSync`.
 *
 * This replaces one method on the socket's private `permessage-deflate` extension object
 * (ws 8.x internals); if that shape is not found, `ws`'s own path stays in use.
 */
import { constants, inflateRawSync } from "node:zlib"
import type { WebSocket } from "ws"

type Callback = (error: Error | null, result?: Buffer) => void

interface PerMessageDeflateInternals {
  params: Readonly<Record<string, unknown>> | null
  decompress: (data: Buffer, fin: boolean, callback: Callback) => void
}

/** RFC 7692: the sender strips this empty stored block from each message; the receiver adds it back. */
const TRAILER = Buffer.from([0x00, 0x00, 0xff, 0xff])
const EMPTY = Buffer.alloc(0)

const extensionOf = (ws: WebSocket): PerMessageDeflateInternals | undefined => {
  const extensions = (ws as unknown as { readonly _extensions?: Readonly<Record<string, unknown>> })
    ._extensions
  const ext = extensions?.["permessage-deflate"]
  if (typeof ext !== "object" || ext === null) return undefined
  const candidate = ext as Partial<PerMessageDeflateInternals>
  return typeof candidate.decompress === "function" ? (ext as PerMessageDeflateInternals) : undefined
}

/** Installs the synchronous inflater on an open socket; false when not applicable. */
export const useSyncInflate = (ws: WebSocket): boolean => {
  const ext = extensionOf(ws)
  if (ext === undefined || ext.params?.server_no_context_takeover !== true) return false
  const fragments: Array<Buffer> = []
  ext.decompress = (data, fin, callback) => {
    fragments.push(data)
    // The callback must not run synchronously: ws's receiver loop would then finish a frame twice.
    if (!fin) {
      queueMicrotask(() => callback(null, EMPTY))
      return
    }
    const input = Buffer.concat([...fragments, TRAILER])
    fragments.length = 0
    let output: Buffer
    try {
      output = inflateRawSync(input, { finishFlush: constants.Z_SYNC_FLUSH })
    } catch (e) {
      const error = e instanceof Error ? e : new Error(String(e))
      queueMicrotask(() => callback(error))
      return
    }
    queueMicrotask(() => callback(null, output))
  }
  return true
}

/** Client compression offer: no context takeover both ways, so messages inflate independently. */
export const compressionOffer = {
  serverNoContextTakeover: true,
  clientNoContextTakeover: true,
} as const
