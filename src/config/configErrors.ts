/**
 * A ConfigError as the operator reads it at startup: one line per bad variable, naming the
 * variable, its value and what it accepts (`quotecast: invalid configuration: RATE_LIMIT=-5: must
 * be a positive integer`), in place of Effect's `cause=` dump of the error tree.
 */
import { ConfigError } from "effect"

/** The failures at the leaves of the tree (And: both failed; Or: every alternative failed). */
const leavesOf = (error: ConfigError.ConfigError): ReadonlyArray<ConfigError.ConfigError> => {
  switch (error._op) {
    case "And":
    case "Or":
      return [...leavesOf(error.left), ...leavesOf(error.right)]
    default:
      return [error]
  }
}

/** A validation's message starts with the variable it checks (AppConfig.ts, jwtConfig.ts). */
const LEADING_NAME = /^([A-Z][A-Z0-9_]*)\b/

const variableOf = (leaf: ConfigError.ConfigError): string | undefined => {
  if (leaf._op === "And" || leaf._op === "Or") return undefined
  if (leaf.path.length > 0) return leaf.path.join("_")
  return LEADING_NAME.exec(leaf.message)?.[1]
}

/** What the variable accepts: the message without the name it starts with or the value it quotes. */
const acceptsOf = (variable: string | undefined, message: string): string => {
  const own = variable !== undefined && message.startsWith(`${variable} `)
  const rest = (own ? message.slice(variable.length + 1) : message).replace(/ but received .*$/s, "")
  return rest.charAt(0).toLowerCase() + rest.slice(1)
}

const MAX_SHOWN = 60

/**
 * The value as it can be shown in a log line: secrets by length only, passwords in URLs masked,
 * long or multi-line values (a PEM) quoted and shortened.
 */
export const shownValue = (variable: string, value: string | undefined): string => {
  if (value === undefined) return "(unset)"
  if (/SECRET|PASSWORD/.test(variable)) return `(hidden, ${Buffer.byteLength(value)} bytes)`
  const masked = value.replace(/\/\/([^:@/\s]*):[^@/\s]*@/g, "//$1:***@")
  const plain = /^[\x21-\x7e]*$/.test(masked) && masked.length <= MAX_SHOWN && masked.length > 0
  return plain
    ? masked
    : JSON.stringify(masked.length > MAX_SHOWN ? `${masked.slice(0, MAX_SHOWN)}...` : masked)
}

/** One line per distinct failure, each starting `quotecast: invalid configuration:`. */
export const configErrorLines = (
  error: ConfigError.ConfigError,
  env: Readonly<Record<string, string | undefined>>,
): ReadonlyArray<string> => {
  const lines = leavesOf(error).map((leaf) => {
    const message = leaf._op === "And" || leaf._op === "Or" ? "" : leaf.message
    const variable = variableOf(leaf)
    const subject = variable === undefined ? "" : `${variable}=${shownValue(variable, env[variable])}: `
    return `quotecast: invalid configuration: ${subject}${acceptsOf(variable, message)}`
  })
  return [...new Set(lines)]
}
