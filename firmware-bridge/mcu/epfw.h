/*
 * epfw: the MCU side of the edgepipe firmware bridge (wire protocol v1, docs/protocol.md).
 *
 * Portable C99 for microcontrollers: no malloc, nothing from libc beyond <stdint.h>,
 * <stddef.h> and <string.h>, no floating point. The library never touches hardware: the
 * application feeds it received bytes (epfw_rx), gives it readings (epfw_add) and asks it for
 * the next frame to transmit (epfw_poll) into a buffer it owns.
 *
 * Delivery contract: a reading stays in the caller-provided ring until the agent acknowledges
 * (ACK) that it is stored durably. Unacknowledged readings are sent again when no ACK progress
 * was seen for `retransmit_ms`, when the agent asks (ACK with RESEND, TIME with HELLO_REQ) and
 * after epfw_link_up(). When the ring is full the oldest unacknowledged reading is overwritten
 * (counted in stats.dropped; the agent records the hole as a gap).
 *
 * Not thread-safe: call every function from one context (main loop), or guard them. epfw_rx may
 * be called with bytes collected by a UART interrupt into a FIFO.
 */
#ifndef EPFW_H
#define EPFW_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EPFW_PROTO_VERSION 1u
#define EPFW_MAX_RAW_FRAME 254u  /* header + payload + CRC, before COBS */
#define EPFW_MAX_WIRE_FRAME 256u /* COBS-encoded frame plus its 0x00 delimiter */
#define EPFW_TX_MIN 128u         /* smallest transmit buffer epfw_poll accepts (HELLO fits) */
#define EPFW_MAX_READINGS 24u    /* readings per READINGS frame */
#define EPFW_MAX_NAME 32u        /* sensor name, firmware id and version: at most this many bytes */
#define EPFW_MAX_UNIT 16u
#define EPFW_RX_MAX 32u          /* longest encoded frame accepted from the agent (ACK, TIME) */
#define EPFW_MAX_TIME_MS 10000000000000ull /* times beyond this (year 2286) are refused */

/* Message types (byte 1 of a frame). Bit 7 set: agent -> MCU. */
#define EPFW_T_HELLO 0x01u
#define EPFW_T_SENSOR 0x02u
#define EPFW_T_READINGS 0x03u
#define EPFW_T_ACK 0x81u
#define EPFW_T_TIME 0x82u

/* Sensor value kinds: how the 32-bit value of a reading is read. */
#define EPFW_KIND_INT32 0u   /* signed integer; value = raw * scale_num / scale_den */
#define EPFW_KIND_FLOAT32 1u /* IEEE 754 binary32 bits; value = float * scale_num / scale_den */
#define EPFW_KIND_BOOL 2u    /* 0 = false, anything else = true */

/* epfw_config_t.flags */
#define EPFW_STAMP_WALL 0x01u /* once TIME was received, send wall-clock (Unix ms) timestamps */

typedef struct {
  const char *name;  /* 1..EPFW_MAX_NAME bytes, e.g. "boiler/t-17" */
  const char *unit;  /* 0..EPFW_MAX_UNIT bytes, SenML/UCUM ("Cel", "%RH"); NULL or "" = none */
  int32_t scale_num; /* value = raw * scale_num / scale_den, e.g. 1/100 for centi-degrees */
  int32_t scale_den; /* > 0 */
  uint8_t kind;      /* EPFW_KIND_* */
} epfw_sensor_t;

/* One slot of the ring of unacknowledged readings (the application provides the array). */
typedef struct {
  uint32_t t_ms;  /* uptime (low 32 bits) when the reading was taken */
  uint32_t value; /* int32, float32 bits or bool, per the sensor's kind */
  uint8_t sensor;
} epfw_slot_t;

/*
 * Optional: a few bytes that survive a reset (a .noinit RAM section or backup registers). With
 * them the next boot's HELLO tells the agent how far the previous boot got, so readings lost in
 * the reset are recorded as a gap instead of vanishing silently.
 */
typedef struct {
  uint32_t boot_id;
  uint32_t next_seq;
  uint32_t check; /* boot_id ^ next_seq ^ magic: tells real data from power-on garbage */
} epfw_retained_t;

typedef struct {
  const char *fw_id;             /* firmware identity, <= EPFW_MAX_NAME bytes, e.g. "boiler-ctl" */
  const char *fw_version;        /* <= EPFW_MAX_NAME bytes, e.g. "1.4.2" */
  const epfw_sensor_t *sensors;  /* sensor table; a reading names its sensor by index */
  uint8_t sensor_count;          /* 1..255 */
  uint8_t flags;                 /* EPFW_STAMP_WALL */
  uint16_t ring_capacity;        /* slots in `ring`, >= 1 */
  epfw_slot_t *ring;             /* storage for unacknowledged readings */
  uint32_t boot_id;              /* != 0 and different on every boot (hardware RNG, boot counter) */
  uint32_t retransmit_ms;        /* resend unacked readings after this long without ACK progress; 0 = 2000 */
  epfw_retained_t *retained;     /* optional, see above; NULL = none */
} epfw_config_t;

typedef struct {
  uint32_t frames_sent;
  uint32_t readings_sent;  /* including retransmissions */
  uint32_t retransmits;    /* times the transmit position went back to resend */
  uint32_t dropped;        /* unacknowledged readings overwritten because the ring was full */
  uint32_t acks;           /* ACK frames that were applied */
  uint32_t time_syncs;     /* TIME frames applied */
  uint32_t rx_frames;      /* valid frames received */
  uint32_t rx_errors;      /* received frames with bad COBS, CRC, version or length */
} epfw_stats_t;

typedef struct {
  const epfw_config_t *cfg;
  uint32_t up_hi, up_lo;      /* extended uptime: calls see a 32-bit millisecond counter that wraps */
  uint32_t tail_seq;          /* oldest reading held (== next_seq when none) */
  uint32_t next_seq;          /* sequence number of the next reading added */
  uint32_t send_seq;          /* next reading to transmit */
  uint16_t tail_idx;          /* ring index of tail_seq */
  uint16_t tx_seq;            /* frame counter */
  uint32_t progress_ms;       /* last ACK progress or retransmission (uptime, low 32 bits) */
  uint64_t wall_off;          /* wall clock minus uptime, ms (valid when time_set) */
  uint32_t prev_boot_id, prev_last_seq;
  uint8_t time_set;
  uint8_t hello;              /* 0 = nothing to announce, 1 = HELLO due, 2 + k = SENSOR k due */
  uint8_t rx_len, rx_skip;
  uint8_t rx[EPFW_RX_MAX];
  epfw_stats_t stats;
} epfw_t;

/* Initialises `fw` for a new boot and queues HELLO. `cfg` must outlive `fw`. Returns 0, or -1
 * when the configuration is invalid (no sensors, no ring, boot_id 0). */
int epfw_init(epfw_t *fw, const epfw_config_t *cfg, uint32_t now_ms);

/* Queues one reading taken now (epfw_add) or at `t_ms` (uptime). Returns 0; 1 when the ring was
 * full and the oldest unacknowledged reading was overwritten; -1 for an unknown sensor index. */
int epfw_add(epfw_t *fw, uint8_t sensor, uint32_t value, uint32_t now_ms);
int epfw_add_at(epfw_t *fw, uint8_t sensor, uint32_t value, uint32_t t_ms, uint32_t now_ms);

/* Feeds bytes received from the agent (any chunking); applies ACK and TIME frames. */
void epfw_rx(epfw_t *fw, const uint8_t *data, size_t len, uint32_t now_ms);

/* Writes the next frame to transmit (COBS-encoded, with its 0x00 delimiter) into `out` and
 * returns its length, or 0 when there is nothing to send now. Call it whenever the transmitter
 * can take a frame; `cap` >= EPFW_TX_MIN (EPFW_MAX_WIRE_FRAME fits the most readings). */
size_t epfw_poll(epfw_t *fw, uint32_t now_ms, uint8_t *out, size_t cap);

/* The link to the agent came (back) up (e.g. USB CDC DTR set): announce HELLO and resend every
 * unacknowledged reading. */
void epfw_link_up(epfw_t *fw, uint32_t now_ms);

/* Sets the wall clock (Unix ms) from a local RTC; TIME frames from the agent do the same.
 * Values above EPFW_MAX_TIME_MS are ignored. */
void epfw_set_wall_ms(epfw_t *fw, uint64_t unix_ms, uint32_t now_ms);
/* Current wall clock (Unix ms); returns 0 when no time was set yet. */
uint64_t epfw_wall_ms(epfw_t *fw, uint32_t now_ms);

/* Readings held (not yet acknowledged). */
uint32_t epfw_pending(const epfw_t *fw);

/* CRC-32C (Castagnoli) of `len` bytes, continuing from `crc` (0 to start). */
uint32_t epfw_crc32c(uint32_t crc, const uint8_t *data, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* EPFW_H */
