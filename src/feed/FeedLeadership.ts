/**
 * Who produces the shared market feed: the simulator, the sector aggregator and the market clock's
 * announcements must run on exactly one instance of a cluster, or subscribers would get every
 * event once per instance. Embedded mode (the default value): this process always leads.
 * Cluster mode (`Leadership.ts`): a Redis lease decides, and leadership can move.
 *
 * A `Context.Reference`, so the market domain needs nothing extra in embedded mode and tests.
 */
import { Context, Effect, type Scope } from "effect"

export interface FeedLeadershipShape {
  /** Whether this instance leads the feed right now. */
  readonly isLeader: () => boolean
  /**
   * Runs `task` while this instance leads: the task's own effect sets up (e.g. publishes the
   * initial state) and returns the loop to run until leadership ends or the scope closes.
   * Leader from the start (embedded): the setup runs before `lead` returns, the loop is forked.
   * Cluster: every time leadership is gained, interrupted when it is lost.
   */
  readonly lead: <R>(
    task: Effect.Effect<Effect.Effect<void>, never, R>,
  ) => Effect.Effect<void, never, R | Scope.Scope>
}

export const alwaysLeader: FeedLeadershipShape = {
  isLeader: () => true,
  lead: (task) => Effect.flatMap(task, (loop) => Effect.asVoid(Effect.forkScoped(loop))),
}

export class FeedLeadership extends Context.Reference<FeedLeadership>()("quotecast/FeedLeadership", {
  defaultValue: (): FeedLeadershipShape => alwaysLeader,
}) {}
