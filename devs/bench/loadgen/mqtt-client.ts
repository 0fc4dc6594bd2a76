// The same simulated devices and subscribers against an MQTT broker, with the `mqtt` npm client:
// MQTT 3.1.1 over TLS, QoS 1 PUBLISH of the same JSON payload (acked by PUBACK), subscribers on
// `feeds/<feed>/#` at QoS 0 (feedline pushes are not acknowledged either).
import { MqttClient } from "mqtt"
import { connectCountedTls, OPEN_TIMEOUT_MS, withTimeout, type CountedTls } from "./wire.ts"
import { deviceOf, mqttTopic, seqOfPayload, updatePayload } from "./payload.ts"
import type { AckHandler, ClientAdapter, DeviceConnection, PushHandler, SubscriberConnection, TargetAddress } from "./types.ts"

/** MQTT keep-alive for benchmark clients: the same order as feedline's metered-link setting. */
const MQTT_KEEPALIVE_S = 60

function connectClient(address: TargetAddress, clientId: string, onClose: (why: string) => void): { client: MqttClient; wire: () => CountedTls; ready: Promise<void> } {
    let wire: CountedTls | undefined
    const client = new MqttClient(
        () => {
            wire = connectCountedTls(address.host, address.port, address.caPath)
            return wire.tls
        },
        { protocolVersion: 4, clean: true, clientId, keepalive: MQTT_KEEPALIVE_S, reconnectPeriod: 0, connectTimeout: OPEN_TIMEOUT_MS }
    )
    const ready = new Promise<void>((resolve, reject) => {
        client.once("connect", () => resolve())
        client.once("error", reject)
        client.once("close", () => reject(new Error("connection closed before CONNACK")))
    })
    let closed = false
    const close = (why: string) => {
        if (!closed) onClose(why)
        closed = true
    }
    client.on("error", (e) => close(`error: ${e.message}`))
    client.on("close", () => close("closed"))
    return { client, wire: () => wire!, ready: withTimeout(ready, OPEN_TIMEOUT_MS, "CONNACK") }
}

export function mqttAdapter(address: TargetAddress): ClientAdapter {
    return {
        async openDevice(device: number, onAck: AckHandler, onClose: (why: string) => void, feedId = address.feedId): Promise<DeviceConnection> {
            const { client, wire, ready } = connectClient(address, `dev${device}`, onClose)
            await ready
            const topic = mqttTopic(feedId, device)
            const send = (seq: number, atMs: number, done: (err?: Error) => void) =>
                client.publish(topic, updatePayload(device, seq, atMs), { qos: 1 }, done)
            await withTimeout(
                new Promise<void>((resolve, reject) => send(0, Date.now(), (err) => (err ? reject(err) : resolve()))),
                OPEN_TIMEOUT_MS,
                "the first PUBACK"
            )
            return {
                send: (seq, atMs) => send(seq, atMs, (err) => onAck(seq, !err, err?.message)),
                bytes: () => wire().bytes(),
                close: () => client.end(true),
            }
        },

        async openSubscriber(index: number, onPush: PushHandler, onClose: (why: string) => void, feedId = address.feedId): Promise<SubscriberConnection> {
            const { client, wire, ready } = connectClient(address, `sub${index}`, onClose)
            await ready
            const prefix = `feeds/${feedId}/`
            client.on("message", (topic, payload) => {
                onPush(deviceOf(topic.slice(prefix.length)), seqOfPayload(JSON.parse(payload.toString("latin1"))))
            })
            await withTimeout(client.subscribeAsync(prefix + "#", { qos: 0 }), OPEN_TIMEOUT_MS, "SUBACK")
            return { bytes: () => wire().bytes(), close: () => client.end(true) }
        },

        /** any other topic tree: MQTT topics need no creating */
        async quietFeed(): Promise<number> {
            return address.feedId + 1
        },
    }
}
