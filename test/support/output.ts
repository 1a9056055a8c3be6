/**
 * What a child process prints, kept as it arrives: each stream apart (for what stdout or stderr
 * must or must not hold) and both together in arrival order (for logs searched as one text).
 */
import type { ChildProcess } from "node:child_process"

export interface Output {
  stdout: string
  stderr: string
  all: string
}

export const captureOutput = (child: ChildProcess): Output => {
  const seen: Output = { stdout: "", stderr: "", all: "" }
  child.stdout?.on("data", (d) => {
    seen.stdout += d
    seen.all += d
  })
  child.stderr?.on("data", (d) => {
    seen.stderr += d
    seen.all += d
  })
  return seen
}
