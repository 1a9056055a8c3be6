/**
 * Topic names. A topic is what a connection subscribes to and what an event is published on.
 * The part in braces is the Redis Cluster hash tag, so sharded pub/sub (SSUBSCRIBE) can place
 * each topic on its own shard without a protocol change (docs/internals/cluster.md "Scaling past one Redis").
 */
import type { SubscriptionType } from "./client.js"
import type { MarketEvent } from "./server.js"

export type Topic = string

export const topicOf = (type: SubscriptionType, target: string): Topic => `${type}:{${target}}`
export const userTopic = (userId: string): Topic => `user:{${userId}}`

export const isUserTopic = (topic: Topic): boolean => topic.startsWith("user:")

/** Whether `topic` is a topic of that subscription type (`stock:{...}` for "stock"). */
export const isOfType = (topic: Topic, type: SubscriptionType): boolean =>
  topic.startsWith(type) && topic.charCodeAt(type.length) === 58 /* ":" */

/** The target a topic names: `005930` for `stock:{005930}`. */
export const targetOf = (topic: Topic): string => topic.slice(topic.indexOf("{") + 1, -1)

const MARKET_CODES = new Set(["KOSPI", "KOSDAQ"])

/** Where a market event is published. Index prices travel on their market's topic. */
export const topicOfEvent = (e: MarketEvent): Topic => {
  switch (e.type) {
    case "price_update":
      return MARKET_CODES.has(e.code) ? topicOf("market", e.code) : topicOf("stock", e.code)
    case "orderbook_update":
    case "instrument_status":
      return topicOf("stock", e.code)
    case "market_status":
      return topicOf("market", e.market)
    case "sector_update":
      return topicOf("sector", e.sector)
    case "candle_update":
      return topicOf("candle", `${e.code}:${e.interval}`)
  }
}
