// The part of @devicescript/drivers' I2CSensorDriver (src/driver.ts, MIT, Microsoft Corporation) the chip
// drivers use: a transaction on the I2C bus (the runtime's _i2cTransaction, as @devicescript/i2c calls it),
// and a read cached for a while and locked, so the quantities of one chip (temp, humidity, pressure) cost
// one measurement. Not imported from the packages: the drivers index compiles in every driver module's
// start-up code (an SPI client among them), and @devicescript/i2c a class of register helpers; together
// about 1.8 KB of the code window (docs/FIRMWARE.md "Program size").
import * as ds from "@devicescript/core"

export abstract class I2CChip<T> {
    private data: T
    /** when `data` was read (ds.millis()); -1 while a read is under way */
    private dataMs = 0

    constructor(readonly address: number, private cacheMs: number) {}

    /** Starts the chip; throws (I2CError, or Error for a wrong chip) when nothing right answers at the address. */
    abstract init(): Promise<void>

    protected abstract readData(): Promise<T>

    /** The last reading when younger than the cache time, else a new one (one at a time). */
    async read(): Promise<T> {
        while (this.dataMs === -1) await ds.sleep(5)
        if (this.data && ds.millis() - this.dataMs < this.cacheMs) return this.data
        this.dataMs = -1
        try {
            this.data = await this.readData()
        } finally {
            this.dataMs = ds.millis()
        }
        return this.data
    }

    /**
     * One I2C transaction: writes `bytes` (a register, a command, a value), then reads `readBytes`. Throws
     * E_I2C with the runtime's status when the chip does not answer.
     */
    protected async xfer(bytes: number[], readBytes: number): Promise<Buffer> {
        const rd = readBytes ? Buffer.alloc(readBytes) : undefined
        const rc = await (ds as any)._i2cTransaction(this.address, Buffer.from(bytes), rd)
        if (rc !== 0) throw new Error(`E_I2C ${rc} at ${this.address}`)
        return rd
    }
}
