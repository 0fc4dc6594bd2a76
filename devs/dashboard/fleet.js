// The fleet view [fleet]: every device that claimed a feed from a product (GET /devices, a master key's),
// with its hardware id, feed, claim time, last seen, link state, firmware and reboots, and what an operator
// does to one: rename it (its feed's title follows), re-arm it (its next claim gets a new key), revoke it.
// Shown only to keys that may see the fleet; refreshed every few seconds and after each action.

/** how often the list is asked for (one request, well within the rate limit) */
export const FLEET_POLL_MS = 5 * 1000

export class FleetView {
    /**
     * @param {{ section: HTMLElement, body: HTMLElement, state: HTMLElement }} els the section, its table body and a status line
     * @param {(method: string, resource: string, o?: object) => Promise<{status: number, body: any}>} request over the page's connection
     * @param {(el: Function, device: any) => void} onDevice called for every device listed (the page loads new feeds)
     * @param {Function} el the page's element helper
     */
    constructor(els, request, onDevice, el) {
        this.els = els
        this.request = request
        this.onDevice = onDevice
        this.el = el
        /** undefined until asked; false once refused (not a master key): the section stays hidden */
        this.allowed = undefined
        setInterval(() => this.refresh(), FLEET_POLL_MS)
    }

    async refresh() {
        if (this.allowed === false) return
        const devices = []
        for (let page = 1; ; page++) {
            const r = await this.request("get", "/devices", { params: { page } }).catch(() => undefined)
            if (!r) return
            if (r.status === 403) {
                this.allowed = false
                this.els.section.hidden = true
                return
            }
            if (r.status !== 200) return
            devices.push(...r.body.devices)
            if (!r.body.devices.length || devices.length >= r.body.totalResults) break
        }
        this.allowed = true
        this.els.section.hidden = devices.length === 0
        this.render(devices)
        for (const d of devices) this.onDevice(d)
    }

    render(devices) {
        const el = this.el
        const age = (iso) => (iso ? new Date(iso).toLocaleString() : "never")
        this.els.body.replaceChildren(
            ...devices.map((d) => {
                const actions = el("td.actions")
                const button = (label, title, run) => {
                    const b = el("button", { type: "button", title, dataset: { action: label.toLowerCase() } }, label)
                    b.addEventListener("click", () => run().then(() => this.refresh()).catch((e) => (this.els.state.textContent = e.message)))
                    actions.append(b)
                }
                button("Rename", "give the device a name (its feed's title follows)", () => this.rename(d))
                if (d.state !== "rearmed") button("Re-arm", "its next claim gets a new key (a reset or replaced board)", () => this.act(d, "post", `/devices/${d.id}/rearm`, "re-armed"))
                if (d.state !== "revoked") button("Revoke", "revoke the device and its key", () => this.revoke(d))
                return el(
                    "tr",
                    { dataset: { device: d.id, link: d.link, state: d.state } },
                    el("td", {}, d.name || "–", el("div.muted", {}, d.hardware_id)),
                    el("td", {}, `/feeds/${d.feed}`),
                    el("td", {}, age(d.claimed)),
                    el("td", {}, age(d.last_seen)),
                    el("td", {}, el(`span.pill.${d.link === "up" ? "online" : d.link}`, {}, d.link)),
                    el("td", {}, d.firmware || "–"),
                    el("td", {}, d.reboots === null ? "–" : String(d.reboots)),
                    el("td", {}, d.state),
                    actions
                )
            })
        )
    }

    async act(d, method, resource, done, body) {
        const r = await this.request(method, resource, body === undefined ? {} : { body })
        if (r.status >= 400) throw new Error(`${d.hardware_id}: ${r.status} ${(r.body && r.body.errors) || ""}`)
        this.els.state.textContent = `${d.name || d.hardware_id} ${done}`
    }

    rename(d) {
        const name = prompt(`Name for ${d.hardware_id} (feed ${d.feed})`, d.name || "")
        return name === null ? Promise.resolve() : this.act(d, "put", `/devices/${d.id}`, `renamed "${name}"`, { name })
    }

    revoke(d) {
        if (!confirm(`Revoke ${d.name || d.hardware_id}? Its key stops working at once; it can claim again only after a re-arm.`)) return Promise.resolve()
        return this.act(d, "delete", `/devices/${d.id}`, "revoked")
    }
}
