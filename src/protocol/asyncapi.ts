/**
 * The AsyncAPI 3.0 description of the WebSocket protocol, built from the Schemas in `client.ts`
 * and `server.ts` (payloads), `CloseCode`, `ErrorCode` and `TOKEN_REJECTIONS`, so it cannot drift from the code:
 * the server answers it at `GET /asyncapi.json`, `npm run asyncapi` writes `docs/asyncapi.yaml`.
 * The words (summaries, the meaning of each code) are docs/protocol.md's, in `asyncapiWords.ts`.
 *
 * The document describes a client of quotecast: operation `send` is what a client sends,
 * `receive` what it receives.
 */
import { JSONSchema, Option, SchemaAST } from "effect"
import {
  clientSummaries,
  closeCodeList,
  description,
  errorCodeList,
  type ServerMessageType,
  serverSummaries,
  tokenReasonList,
} from "./asyncapiWords.js"
import { ClientMessage, type ClientMessageType } from "./client.js"
import { Batch, ServerSingle } from "./server.js"

export type { ServerMessageType }

/** Where the shared JSON Schemas live in the document; every `$ref` the generator writes points here. */
const SCHEMAS = "#/components/schemas/"

// ---- payloads: JSON Schemas from the protocol Schemas, sharing one set of definitions ----

type Definitions = Record<string, JSONSchema.JsonSchema7>

/**
 * The Schemas decode with excess properties ignored (the gateway ignores fields it does not know,
 * and additions to server messages are additive), so the JSON Schemas allow them too.
 */
const jsonSchemaOf = (ast: SchemaAST.AST, definitions: Definitions): JSONSchema.JsonSchema7 =>
  JSONSchema.fromAST(ast, {
    definitions,
    definitionPath: SCHEMAS,
    target: "jsonSchema7",
    additionalPropertiesStrategy: "allow",
  })

/** A sub-schema equal to a named one becomes a `$ref` to it (the batch's items: the single messages). */
const referTo = (named: ReadonlyMap<string, string>) => {
  const walk = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(walk)
    if (typeof node !== "object" || node === null) return node
    const name = named.get(JSON.stringify(node))
    if (name !== undefined) return { $ref: `${SCHEMAS}${name}` }
    return Object.fromEntries(Object.entries(node).map(([key, value]) => [key, walk(value)]))
  }
  return walk
}

interface Payload<T extends string> {
  readonly type: T
  readonly ast: SchemaAST.AST
  readonly ref: string
}

interface Payloads {
  readonly client: ReadonlyArray<Payload<ClientMessageType>>
  readonly server: ReadonlyArray<Payload<ServerMessageType>>
  readonly schemas: Readonly<Record<string, unknown>>
}

/**
 * Every message's payload as a `$ref` into components/schemas: a Schema with an identifier is
 * named by it (the client messages); one without is named after its `type` (the server messages).
 * The batch's items refer to the single messages rather than repeating them.
 */
const payloads = (): Payloads => {
  const definitions: Definitions = {}
  const inline: Record<string, JSONSchema.JsonSchema7> = {}
  const payload = <T extends string>(type: T, ast: SchemaAST.AST): Payload<T> => {
    const schema = jsonSchemaOf(ast, definitions)
    if ("$ref" in schema) return { type, ast, ref: schema.$ref }
    inline[type] = schema
    return { type, ast, ref: `${SCHEMAS}${type}` }
  }
  const client = ClientMessage.members.map((m) => payload(m.fields.type.literals[0], m.ast))
  const singles = ServerSingle.members.map((m) => payload(m.fields.type.literals[0], m.ast))
  const named = new Map(Object.entries(inline).map(([type, schema]) => [JSON.stringify(schema), type]))
  const batchType = Batch.fields.type.literals[0]
  const batchSchema = referTo(named)(jsonSchemaOf(Batch.ast, definitions))
  for (const type of [...Object.keys(inline), batchType]) {
    // A Schema identifier equal to a message type would make two schemas share one name.
    if (type in definitions) throw new Error(`AsyncAPI: the schema name "${type}" is used twice`)
  }
  const batch = { type: batchType, ast: Batch.ast, ref: `${SCHEMAS}${batchType}` }
  const schemas = { ...definitions, ...inline, [batchType]: batchSchema }
  return { client, server: [...singles, batch], schemas }
}

/** Title and description annotations of a message's Schema, where it has them. */
const annotated = (ast: SchemaAST.AST) => ({
  ...Option.match(SchemaAST.getTitleAnnotation(ast), { onNone: () => ({}), onSome: (title) => ({ title }) }),
  ...Option.match(SchemaAST.getDescriptionAnnotation(ast), {
    onNone: () => ({}),
    onSome: (description) => ({ description }),
  }),
})

// ---- the document ----

export const ASYNCAPI_CHANNEL = "ws"

export interface AsyncApiMessage {
  readonly name: string
  readonly title?: string
  readonly summary: string
  readonly description?: string
  readonly contentType: "application/json"
  readonly payload: { readonly $ref: string }
}

export interface AsyncApiDocument {
  readonly asyncapi: "3.0.0"
  readonly info: { readonly title: string; readonly version: string; readonly description: string }
  readonly defaultContentType: "application/json"
  readonly servers: Readonly<Record<string, unknown>>
  readonly channels: {
    readonly [ASYNCAPI_CHANNEL]: {
      readonly address: string
      readonly messages: Readonly<Record<string, { readonly $ref: string }>>
    } & Readonly<Record<string, unknown>>
  }
  readonly operations: Readonly<
    Record<"send" | "receive", { readonly action: "send" | "receive" } & Readonly<Record<string, unknown>>>
  >
  readonly components: {
    readonly messages: Readonly<Record<string, AsyncApiMessage>>
    readonly schemas: Readonly<Record<string, unknown>>
  }
  readonly [extension: `x-${string}`]: unknown
}

const message = (p: Payload<string>, summary: string): AsyncApiMessage => ({
  name: p.type,
  summary,
  ...annotated(p.ast),
  contentType: "application/json",
  payload: { $ref: p.ref },
})

/** The whole document as a plain object (JSON-ready); the same every time it is built. */
export const asyncApiDocument = (): AsyncApiDocument => {
  const { client, server, schemas } = payloads()
  const messages = Object.fromEntries([
    ...client.map((p) => [p.type, message(p, clientSummaries[p.type])] as const),
    ...server.map((p) => [p.type, message(p, serverSummaries[p.type])] as const),
  ])
  const channelMessages = Object.fromEntries(
    Object.keys(messages).map((type) => [type, { $ref: `#/components/messages/${type}` }]),
  )
  const operation = (action: "send" | "receive", types: ReadonlyArray<string>, summary: string) => ({
    action,
    channel: { $ref: `#/channels/${ASYNCAPI_CHANNEL}` },
    summary,
    messages: types.map((type) => ({ $ref: `#/channels/${ASYNCAPI_CHANNEL}/messages/${type}` })),
  })
  return {
    asyncapi: "3.0.0",
    info: { title: "quotecast WebSocket API", version: "v1", description },
    defaultContentType: "application/json",
    servers: {
      gateway: {
        host: "{host}",
        protocol: "ws",
        description:
          "A quotecast gateway; one port serves HTTP and WebSocket. Behind a TLS-terminating proxy, use wss.",
        variables: { host: { default: "localhost:8000", description: "host and port (PORT, default 8000)" } },
      },
    },
    channels: {
      [ASYNCAPI_CHANNEL]: {
        address: "/v1/ws",
        title: "The WebSocket",
        description:
          "The one WebSocket path. `connected` comes first on every connection; then the server answers the client's messages in order and delivers the market data of its subscriptions.",
        messages: channelMessages,
        bindings: {
          ws: {
            method: "GET",
            query: {
              type: "object",
              properties: {
                token: {
                  type: "string",
                  description:
                    "A JWT: HS256 signed with JWT_SECRET, or an identity provider's token verified with JWT_PUBLIC_KEY or JWT_JWKS_URL (see the token reasons). Without it the connection is anonymous: all market data, no alerts. An invalid token is never downgraded to anonymous: `error` INVALID_TOKEN, then close 4001. An empty value counts as absent.",
                },
                session_id: {
                  type: "string",
                  description:
                    "The id of an earlier session to restore (same user, or anonymous without a token): `reconnected` follows `connected`, or `error` SESSION_RESTORATION_FAILED. An empty value counts as absent.",
                },
              },
            },
            bindingVersion: "0.1.0",
          },
        },
      },
    },
    operations: {
      send: operation(
        "send",
        client.map((p) => p.type),
        "What a client sends: one JSON message per text frame.",
      ),
      receive: operation(
        "receive",
        server.map((p) => p.type),
        "What a client receives: one message per frame, or a `batch` of several.",
      ),
    },
    components: { messages, schemas },
    "x-error-codes": errorCodeList,
    "x-close-codes": closeCodeList,
    "x-token-reasons": tokenReasonList,
  }
}
