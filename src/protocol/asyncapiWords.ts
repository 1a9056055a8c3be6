/**
 * The words of the AsyncAPI document (`asyncapi.ts`): each message's summary and the meaning of
 * every error code, token reason and close code, as docs/protocol.md says them. Each table is
 * keyed by the code's own literals (the Schemas' message types, `ErrorCode`, `CloseCode`,
 * `TOKEN_REJECTIONS`), so a new one does not compile until it is described here.
 */
import { Record as Rec } from "effect"
import type { ClientMessageType } from "./client.js"
import { CloseCode, TOKEN_REJECTIONS, type TokenRejection } from "./errors.js"
import type { ErrorCode, ServerMessage } from "./server.js"

export type ServerMessageType = ServerMessage["type"]

export const clientSummaries: Record<ClientMessageType, string> = {
  subscribe:
    "Subscribe to stocks, markets, sectors or candles (`code:interval`, interval 1m, 5m, 15m, 1h or 1d). Answered by `subscribed` and a snapshot of each accepted target; rejected targets get `error` SUBSCRIPTION_FAILED.",
  unsubscribe: "Stop receiving targets. Answered by `unsubscribed` with the targets actually removed.",
  ping: "An application-level ping. Answered by `pong` echoing `id` as sent.",
  refresh_token:
    "Replace the connection's token (same user) before it expires. Answered by `token_refreshed`, or `error` TOKEN_REFRESH_ERROR.",
  reconnect:
    "Restore an earlier session on this connection. Answered by `reconnected` and the missed messages, or `error` SESSION_RESTORATION_FAILED.",
}

export const serverSummaries: Record<ServerMessageType, string> = {
  connected:
    "Always the first message, alone in the first frame: the connection, its session (keep `session_id` to restore it) and the user (`null` when anonymous).",
  reconnected:
    "A session was restored; exactly `missed_messages_count` messages follow (snapshots of the restored targets, then alerts kept for the session).",
  subscribed: "The accepted targets of a `subscribe`; a snapshot of each follows.",
  unsubscribed: "The targets an `unsubscribe` actually removed (possibly none).",
  pong: "The answer to `ping`, echoing its `id`.",
  token_refreshed: "The answer to an accepted `refresh_token`: the user and the new expiry.",
  error:
    "A refused request or a connection problem: `code` names it, `details` carries its context. It never closes the connection by itself (see the error codes).",
  price_update:
    "A stock's last trade, or an index level (`code` KOSPI or KOSDAQ, on a market subscription). `snapshot: true` marks a snapshot. Additive ticker fields of the trading day: `open`, `high`, `low` (stocks and indices), `prev_close`, `value` (cumulative traded value in KRW), best `bid` and `ask` (stocks, when a book is known).",
  orderbook_update:
    "The full top of a stock's book, never a delta (replace your copy), with its CRC-32 `checksum`.",
  market_status: "A market's trading status.",
  instrument_status:
    "A stock's trading state on its `stock` subscription (also in its snapshot): `trading`, `halted`, or `vi` (volatility interruption: a 2-minute single-price auction) with `vi_type` (`static`/`dynamic`), `reference_price` and `expected_end`; `reason` says why. Never conflated.",
  sector_update: "A sector's summary, at most once per second per sector.",
  alert: "A price alert of the connection's user fired; de-duplicate by `alert_id`.",
  // ---- candles ----
  candle_update:
    "A bar of a `candle` subscription (`code:interval`): the bar in progress (`closed: false`, conflated like prices) or, once, a bar that ended (`closed: true`, never conflated). Bars follow Asia/Seoul time and KRX sessions.",
  candle_snapshot:
    "What a `candle` subscription starts with: the last closed bars (oldest first, CANDLE_SNAPSHOT_BARS of them at most) and the bar in progress (`null` when none).",
  batch:
    "Two or more messages in one frame, in sequence order; `sequence` is that of the last. Unpack before anything else; batches are never nested.",
}

interface ErrorWords {
  readonly when: string
  readonly details: string
  /** What becomes of the connection. */
  readonly connection: string
}

interface CloseWords {
  readonly when: string
  /** What a client should do. */
  readonly advice: string
}

const errorCodes: Record<ErrorCode, ErrorWords> = {
  INVALID_MESSAGE: {
    when: "a frame that is not a valid client message",
    details:
      "`reason` (malformed_json, binary_frame, not_an_object, too_deep, array_too_long, too_many_members, missing_type, unknown_type, invalid_fields) and its context",
    connection: "the connection stays open",
  },
  RATE_LIMIT_EXCEEDED: {
    when: "a frame over the rate limit; it was not processed",
    details: "`rate_limit`: the connection's limit in messages per second",
    connection: "the connection stays open; sustained abuse closes it with 1008",
  },
  SUBSCRIPTION_FAILED: {
    when: "some or all targets of a `subscribe` were rejected",
    details:
      "`subscription_type`; `rejected`: [{target, reason}] with reason unknown_target or max_subscriptions; `accepted`; `max_subscriptions`",
    connection: "the connection stays open",
  },
  INVALID_TOKEN: {
    when: "the connect token is invalid, or the token expired without a refresh",
    details: "`reason`: a token reason (Token reasons, `x-token-reasons`)",
    connection: "close 4001",
  },
  SESSION_RESTORATION_FAILED: {
    when: "a `session_id` (query parameter or `reconnect`) could not be restored",
    details: "`session_id` as requested; `reason`: not_found, expired, user_mismatch or store_unavailable",
    connection: "the connection goes on with the session `connected` announced",
  },
  TOKEN_REFRESH_ERROR: {
    when: "a `refresh_token` was refused",
    details:
      "`reason`: a token reason as for INVALID_TOKEN, or different_user: the token's user is not the connection's",
    connection: "the connection keeps its identity and its old expiry",
  },
}

/** The key sources of docs/tokens.md: HS256 with a secret, a PEM public key, a remote JWK set. */
type KeySource = "JWT_SECRET" | "JWT_PUBLIC_KEY" | "JWT_JWKS_URL"

interface TokenReasonWords {
  readonly when: string
  /** The key sources whose tokens can be refused this way (none: the reason of having none). */
  readonly sources: ReadonlyArray<KeySource>
}

const EVERY_SOURCE: ReadonlyArray<KeySource> = ["JWT_SECRET", "JWT_PUBLIC_KEY", "JWT_JWKS_URL"]
const PROVIDER: ReadonlyArray<KeySource> = ["JWT_PUBLIC_KEY", "JWT_JWKS_URL"]
const JWKS: ReadonlyArray<KeySource> = ["JWT_JWKS_URL"]

const tokenReasons: Record<TokenRejection, TokenReasonWords> = {
  no_secret_configured: {
    when: "the server has no key source (none of JWT_SECRET, JWT_PUBLIC_KEY, JWT_JWKS_URL): every token is refused; anonymous connections still work",
    sources: [],
  },
  malformed: {
    when: "not a signed JWT in compact form, or its header or claims are not readable JSON (a header without a string `alg`, claims that are not an object)",
    sources: EVERY_SOURCE,
  },
  alg_not_allowed: {
    when: "the header's `alg` is one no configured source verifies: HS256 without JWT_SECRET, an asymmetric algorithm without JWT_PUBLIC_KEY or JWT_JWKS_URL, one outside JWT_ALGORITHMS or the public key's own, `none`",
    sources: EVERY_SOURCE,
  },
  bad_signature: {
    when: "the signature does not verify with the key: the secret, the PEM public key, or the JWK set's key for the token's `kid`",
    sources: EVERY_SOURCE,
  },
  expired: {
    when: "`exp` is in the past: at connect, at refresh, or reached on a live connection",
    sources: EVERY_SOURCE,
  },
  not_yet_valid: { when: "`nbf` is in the future", sources: EVERY_SOURCE },
  wrong_issuer: {
    when: "JWT_ISSUER is set and `iss` is absent or none of its values (HS256 tokens have no issuer check)",
    sources: PROVIDER,
  },
  wrong_audience: {
    when: "JWT_AUDIENCE is set and `aud` is absent or names none of its values (HS256 tokens have no audience check)",
    sources: PROVIDER,
  },
  invalid_claims: {
    when: "another registered claim failed its check (`exp` or `iat` not a number)",
    sources: EVERY_SOURCE,
  },
  unknown_key: {
    when: "no key of the JWK set has the token's `kid` (and `alg`), even after fetching the set again",
    sources: JWKS,
  },
  ambiguous_key: {
    when: "several keys of the JWK set fit the token's header (no `kid`, or one that several keys share)",
    sources: JWKS,
  },
  jwks_unavailable: {
    when: "the JWK set cannot be fetched (unreachable, past JWT_JWKS_TIMEOUT_MS, not a JWK set) and no key held from before fits the token",
    sources: JWKS,
  },
  missing_user_id: {
    when: "the user claim is absent or empty: `sub` for HS256 tokens, the claim JWT_USER_CLAIM names (default `sub`) for the others",
    sources: EVERY_SOURCE,
  },
  invalid_user_claim: {
    when: "the user claim is not a string, or its dotted path crosses a value that is not an object",
    sources: EVERY_SOURCE,
  },
  invalid_role_claim: {
    when: "the role claim (`role` for HS256 tokens, the claim JWT_ROLE_CLAIM names for the others) is neither a string nor an array of strings; an absent one means no role",
    sources: EVERY_SOURCE,
  },
  verification_failed: {
    when: "verification failed in a way none of the above names (logged)",
    sources: EVERY_SOURCE,
  },
}

const closeCodes: Record<keyof typeof CloseCode, CloseWords> = {
  normal: { when: "never on its own; it answers a client's normal close", advice: "nothing" },
  goingAway: { when: "never; browsers send it when a page goes away", advice: "nothing" },
  abnormal: {
    when: "never sent: the connection dropped without a close frame (network loss, or the heartbeat ended a connection that answered nothing)",
    advice: "reconnect with backoff and restore the session",
  },
  policyViolation: {
    when: "the client kept sending over its rate limit, or its frames piled up unprocessed",
    advice: "fix the client's sending; reconnecting at once repeats it",
  },
  messageTooBig: { when: "a frame larger than MAX_PAYLOAD_BYTES (64 KiB)", advice: "send smaller frames" },
  internalError: {
    when: "an internal error on the server",
    advice: "reconnect with backoff and restore the session",
  },
  serviceRestart: {
    when: "the server is restarting or shutting down",
    advice: "reconnect with backoff and jitter, restore the session; subscribe again if the restore fails",
  },
  tryAgainLater: {
    when: "connection setup waited too long or its queue was full, a slow reader, or the outbound budget",
    advice: "reconnect with backoff and restore the session",
  },
  takenOver: {
    when: "another connection restored this session (takeover)",
    advice: "do not reconnect automatically: another tab, device or process holds the session",
  },
  invalidToken: {
    when: "the token is invalid, or it expired without a refresh",
    advice: "get a new token, then connect (restoring after an expiry works with a token for the same user)",
  },
}

const table = (header: string, rows: ReadonlyArray<ReadonlyArray<string | number>>) =>
  [header, header.replace(/[^|]+/g, " --- "), ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n")

export const closeCodeList = Rec.toEntries(CloseCode).map(([name, code]) => ({
  code,
  name,
  ...closeCodes[name],
}))
export const errorCodeList = Rec.toEntries(errorCodes).map(([code, words]) => ({ code, ...words }))
/** In the code's order (`TOKEN_REJECTIONS`). */
export const tokenReasonList = TOKEN_REJECTIONS.map((reason) => ({ reason, ...tokenReasons[reason] }))

/** The document's `info.description`: what the protocol is, then the tables of codes and reasons. */
export const description = [
  "Real-time KRX market data over one WebSocket: subscribe to stocks, markets, sectors and candles, receive prices, order books, market status, sector summaries, candles (bars by interval) and the user's price alerts.",
  "This document describes a client: operation `send` lists what a client sends, `receive` what it receives. Every frame is one JSON object in a text frame; a server frame is one message or a `batch` of several. Every server message carries `type`, `timestamp` and `sequence` (per session, 1, 2, 3, ... without gaps). The full contract, with lifecycle rules, limits and cluster behaviour, is docs/protocol.md in the quotecast repository.",
  "## Error codes (`error.code`)",
  table(
    "| code | when | `details` | the connection |",
    errorCodeList.map((e) => [`\`${e.code}\``, e.when, e.details, e.connection]),
  ),
  "## Token reasons (`details.reason` of INVALID_TOKEN and TOKEN_REFRESH_ERROR)",
  "A refused token gets one of these reasons, whichever key source it was checked with: HS256 with JWT_SECRET, a PEM public key (JWT_PUBLIC_KEY: RS*, PS*, ES*, EdDSA), or an identity provider's JWK set (JWT_JWKS_URL). Over HTTP the same reason is in the 401's message.",
  table(
    "| reason | when | key sources |",
    tokenReasonList.map((t) => [`\`${t.reason}\``, t.when, t.sources.join(", ") || "none configured"]),
  ),
  "## Close codes",
  table(
    "| code | sent when | what a client should do |",
    closeCodeList.map((c) => [c.code, c.when, c.advice]),
  ),
].join("\n\n")
