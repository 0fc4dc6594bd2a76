// One live uPlot chart per datastream. History fills it; pushes append to it. Redraws are batched to
// one per animation frame, so a burst of pushes costs one draw. The container's data-points and
// data-last attributes say what is drawn (the browser test reads them).
/* global uPlot */

/** a value that is not a number (e.g. "on") is drawn as a gap; booleans as 1/0 are numbers already */
function numeric(v) {
    const n = typeof v === "number" ? v : Number(v)
    return v === "" || v === null || v === undefined || !Number.isFinite(n) ? null : n
}

export class StreamPlot {
    constructor(container, label) {
        this.container = container
        this.xs = []
        this.ys = []
        this.windowSec = 3600
        this.dirty = false
        this.label = label
        /** a switch (only 0 and 1) is drawn as steps: it holds its value until the next change */
        this.stepped = false
        this.plot = this.create()
        this.resizer = new ResizeObserver(() => {
            const w = Math.max(200, this.container.clientWidth)
            if (w !== this.plot.width) this.plot.setSize({ width: w, height: 150 })
        })
        this.resizer.observe(container)
        this.mark()
    }

    create() {
        const series = { label: this.label, stroke: "#2b6cb0", width: 1.5, fill: "rgba(43,108,176,0.08)", spanGaps: false, points: { size: 4 } }
        if (this.stepped) series.paths = uPlot.paths.stepped({ align: 1 })
        return new uPlot(
            {
                width: Math.max(200, this.container.clientWidth || 320),
                height: 150,
                legend: { show: false },
                cursor: { drag: { x: true, y: false } },
                scales: { x: { time: true } },
                axes: [{ size: 30, font: "11px system-ui" }, { size: 48, font: "11px system-ui" }],
                series: [{}, series],
            },
            [this.xs, this.ys],
            this.container
        )
    }

    /** Replaces the data with a history of {at, value} (oldest first) and shows the last `windowSec`. */
    setHistory(points, windowSec) {
        this.windowSec = windowSec
        const xs = points.map((p) => Date.parse(p.at) / 1000)
        const ys = points.map((p) => numeric(p.value))
        // the read may predate a push that came while it was on its way: the live points newer than its newest are
        // kept (replaced, the newest value vanished from the plot until the next push; draw() cuts the window)
        const newest = xs.length ? xs[xs.length - 1] : -Infinity
        for (let i = 0; i < this.xs.length; i++) {
            if (this.xs[i] > newest) {
                xs.push(this.xs[i])
                ys.push(this.ys[i])
            }
        }
        this.xs = xs
        this.ys = ys
        const stepped = this.ys.length > 0 && this.ys.every((y) => y === 0 || y === 1 || y === null)
        if (stepped !== this.stepped) {
            this.stepped = stepped
            this.plot.destroy()
            this.plot = this.create()
        }
        this.schedule()
    }

    /** Adds one live point, in time order (a late point is inserted where it belongs). */
    add(at, value) {
        const x = Date.parse(at) / 1000
        let i = this.xs.length
        while (i > 0 && this.xs[i - 1] > x) i--
        if (i > 0 && this.xs[i - 1] === x) this.ys[i - 1] = numeric(value) // the same `at` again: the later value wins [P§9]
        else {
            this.xs.splice(i, 0, x)
            this.ys.splice(i, 0, numeric(value))
        }
        this.schedule()
    }

    schedule() {
        if (this.dirty) return
        this.dirty = true
        requestAnimationFrame(() => this.draw())
    }

    draw() {
        this.dirty = false
        // keep only the chosen window: a week of live pushes must not grow without bound
        const from = Date.now() / 1000 - this.windowSec
        let cut = 0
        while (cut < this.xs.length && this.xs[cut] < from) cut++
        if (cut) {
            this.xs.splice(0, cut)
            this.ys.splice(0, cut)
        }
        const now = Date.now() / 1000
        this.plot.setData([this.xs, this.ys])
        this.plot.setScale("x", { min: now - this.windowSec, max: now })
        this.mark()
    }

    mark() {
        this.container.dataset.points = String(this.xs.length)
        this.container.dataset.last = this.ys.length ? String(this.ys[this.ys.length - 1]) : ""
    }

    destroy() {
        this.resizer.disconnect()
        this.plot.destroy()
    }
}
