/**
 * A strict reader of the Prometheus text exposition format 0.0.4, as its specification states it
 * (prometheus.io, "Exposition formats", text format details): comment lines, HELP and TYPE, one
 * group of samples per family after its TYPE, names and label names by their grammar, label values
 * with their three escapes, values as Go's ParseFloat reads them (prom-client writes NaN as "Nan"),
 * an optional timestamp; for a histogram, `_bucket` series with `le` ending at +Inf, cumulative,
 * and `_count` equal to +Inf's.
 * Anything else throws, naming the line. The npm parser tried first (parse-prometheus-text-format
 * 1.1.1) merged the buckets of a labelled histogram when `le` comes first, as prom-client writes
 * it, and lost their `_sum` and `_count`.
 */

export type MetricType = "counter" | "gauge" | "histogram" | "summary" | "untyped"

export interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

export interface Family {
  readonly name: string
  readonly type: MetricType
  readonly help: string | undefined
  readonly samples: ReadonlyArray<Sample>
}

export interface HistogramSeries {
  readonly labels: Readonly<Record<string, string>>
  /** Upper bounds in order, +Inf last, with their cumulative counts. */
  readonly buckets: ReadonlyArray<readonly [number, number]>
  readonly sum: number
  readonly count: number
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/
const TYPES: ReadonlyArray<MetricType> = ["counter", "gauge", "histogram", "summary", "untyped"]
const isType = (s: string): s is MetricType => TYPES.some((t) => t === s)

/** A value as Go's strconv.ParseFloat reads it (the format's rule): NaN and Inf in any case. */
const parseValue = (text: string, line: number): number => {
  const special = /^([+-]?)(nan|inf|infinity)$/i.exec(text)
  if (special !== null) {
    if ((special[2] ?? "").toLowerCase() === "nan") return Number.NaN
    return special[1] === "-" ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY
  }
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text))
    throw new Error(`line ${line}: bad value "${text}"`)
  return Number(text)
}

/** Which family a sample name belongs to, given the family types declared so far. */
const familyOf = (name: string, types: ReadonlyMap<string, MetricType>): string => {
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    if (!name.endsWith(suffix)) continue
    const base = name.slice(0, -suffix.length)
    const type = types.get(base)
    if (type === "histogram" || (type === "summary" && suffix !== "_bucket")) return base
  }
  return name
}

const parseLabels = (text: string, line: number): { labels: Record<string, string>; rest: string } => {
  const labels: Record<string, string> = {}
  let s = text.slice(1)
  for (;;) {
    s = s.trimStart()
    if (s.startsWith("}")) return { labels, rest: s.slice(1) }
    const name = LABEL_NAME.exec(s)?.[0]
    if (name === undefined) throw new Error(`line ${line}: bad label name at "${s}"`)
    if (name in labels) throw new Error(`line ${line}: label ${name} twice`)
    s = s.slice(name.length).trimStart()
    if (!s.startsWith('="')) throw new Error(`line ${line}: expected =" after ${name}`)
    s = s.slice(2)
    let value = ""
    for (;;) {
      const c = s[0]
      if (c === undefined) throw new Error(`line ${line}: unterminated label value`)
      s = s.slice(1)
      if (c === '"') break
      if (c === "\\") {
        const e = s[0]
        s = s.slice(1)
        if (e === "\\") value += "\\"
        else if (e === '"') value += '"'
        else if (e === "n") value += "\n"
        else throw new Error(`line ${line}: bad escape \\${e ?? ""}`)
      } else value += c
    }
    labels[name] = value
    s = s.trimStart()
    if (s.startsWith(",")) s = s.slice(1)
    else if (!s.startsWith("}")) throw new Error(`line ${line}: expected , or } after label ${name}`)
  }
}

/** Every family of an exposition, by name; throws on anything the format does not allow. */
export const parsePrometheusText = (text: string): ReadonlyMap<string, Family> => {
  const types = new Map<string, MetricType>()
  const helps = new Map<string, string>()
  const samples = new Map<string, Array<Sample>>()
  const closed = new Set<string>()
  let current: string | undefined
  const enter = (family: string, line: number) => {
    if (family === current) return
    if (closed.has(family)) throw new Error(`line ${line}: ${family} is not one group`)
    if (current !== undefined) closed.add(current)
    current = family
  }
  text.split("\n").forEach((raw, i) => {
    const line = i + 1
    if (raw.trim() === "") return
    if (raw.startsWith("#")) {
      const m = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s(.*))?$/.exec(raw)
      if (m === null) return // an ordinary comment
      const [, keyword, name = "", rest = ""] = m
      if (METRIC_NAME.exec(name)?.[0] !== name) throw new Error(`line ${line}: bad metric name ${name}`)
      enter(name, line)
      if (keyword === "HELP") {
        if (helps.has(name)) throw new Error(`line ${line}: second HELP for ${name}`)
        helps.set(name, rest.replace(/\\n/g, "\n").replace(/\\\\/g, "\\"))
      } else {
        if (!isType(rest)) throw new Error(`line ${line}: unknown type ${rest}`)
        if (types.has(name) || samples.has(name)) throw new Error(`line ${line}: TYPE for ${name} too late`)
        types.set(name, rest)
      }
      return
    }
    const name = METRIC_NAME.exec(raw)?.[0]
    if (name === undefined) throw new Error(`line ${line}: no metric name in "${raw}"`)
    let rest = raw.slice(name.length)
    let labels: Record<string, string> = {}
    if (rest.startsWith("{")) ({ labels, rest } = parseLabels(rest, line))
    const fields = rest.trim().split(/\s+/)
    if (fields.length < 1 || fields.length > 2 || !/^\s/.test(rest))
      throw new Error(`line ${line}: expected a value (and a timestamp) in "${raw}"`)
    if (fields[1] !== undefined && !/^-?\d+$/.test(fields[1])) throw new Error(`line ${line}: bad timestamp`)
    const family = familyOf(name, types)
    enter(family, line)
    const list = samples.get(family) ?? []
    list.push({ name, labels, value: parseValue(fields[0] ?? "", line) })
    samples.set(family, list)
  })
  const families = new Map<string, Family>()
  for (const name of new Set([...types.keys(), ...helps.keys(), ...samples.keys()])) {
    const family = {
      name,
      type: types.get(name) ?? "untyped",
      help: helps.get(name),
      samples: samples.get(name) ?? [],
    }
    if (family.type === "histogram") histogramSeries(family)
    families.set(name, family)
  }
  return families
}

const seriesKey = (labels: Readonly<Record<string, string>>, without: string | undefined) =>
  JSON.stringify(
    Object.entries(labels)
      .filter(([k]) => k !== without)
      .sort(([a], [b]) => (a < b ? -1 : 1)),
  )

/** A histogram family's series (one per label set besides `le`), checked as the format requires. */
export const histogramSeries = (family: Family): ReadonlyArray<HistogramSeries> => {
  if (family.type !== "histogram") throw new Error(`${family.name} is a ${family.type}, not a histogram`)
  const series = new Map<
    string,
    { labels: Record<string, string>; buckets: Array<[number, number]>; sum?: number; count?: number }
  >()
  for (const s of family.samples) {
    const key = seriesKey(s.labels, s.name.endsWith("_bucket") ? "le" : undefined)
    const { le: _le, ...labels } = s.labels
    const entry = series.get(key) ?? { labels, buckets: [] }
    series.set(key, entry)
    if (s.name === `${family.name}_bucket`) {
      if (s.labels.le === undefined) throw new Error(`${s.name} without le`)
      entry.buckets.push([parseValue(s.labels.le, 0), s.value])
    } else if (s.name === `${family.name}_sum`) entry.sum = s.value
    else if (s.name === `${family.name}_count`) entry.count = s.value
    else throw new Error(`${s.name} in histogram ${family.name}`)
  }
  return [...series.values()].map(({ labels, buckets, sum, count }) => {
    const where = `${family.name}${seriesKey(labels, undefined)}`
    if (sum === undefined || count === undefined) throw new Error(`${where}: no _sum or _count`)
    const last = buckets.at(-1)
    if (last === undefined || last[0] !== Number.POSITIVE_INFINITY)
      throw new Error(`${where}: no +Inf bucket last`)
    buckets.forEach(([le, n], i) => {
      const [prevLe, prevN] = buckets[i - 1] ?? [Number.NEGATIVE_INFINITY, 0]
      if (!(le > prevLe)) throw new Error(`${where}: bucket bounds out of order`)
      if (n < prevN) throw new Error(`${where}: bucket counts not cumulative`)
    })
    if (last[1] !== count) throw new Error(`${where}: +Inf bucket ${last[1]} but _count ${count}`)
    return { labels, buckets, sum, count }
  })
}
