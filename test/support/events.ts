/** Market events the specs share. */
import type { PriceUpdate } from "../../src/protocol/server.js"

/** One trade of Samsung Electronics at 09:00:01.250 UTC. */
export const samsungTrade: PriceUpdate = {
  type: "price_update",
  code: "005930",
  name: "Samsung Electronics",
  price: 73000,
  change: 100,
  change_percent: 0.14,
  volume: 1000,
  timestamp: "2026-12-05T09:00:01.250Z",
}
