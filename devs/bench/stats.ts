// Latency samples and their percentiles. Samples are kept (not binned): a phase records at most a few
// hundred thousand, and exact percentiles make runs comparable.

export interface Percentiles {
    count: number
    p50: number
    p99: number
    p999: number
    max: number
}

export class Samples {
    private values: number[] = []
    add(v: number): void {
        this.values.push(v)
    }
    get count(): number {
        return this.values.length
    }
    percentiles(): Percentiles {
        const s = Float64Array.from(this.values).sort()
        const at = (q: number) => (s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : NaN)
        return { count: s.length, p50: at(0.5), p99: at(0.99), p999: at(0.999), max: s.length ? s[s.length - 1] : NaN }
    }
}

export function median(values: number[]): number {
    if (!values.length) return NaN
    const s = [...values].sort((a, b) => a - b)
    const mid = s.length >> 1
    return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}
