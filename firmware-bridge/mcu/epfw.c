/*
 * epfw: MCU side of the edgepipe firmware bridge. See epfw.h for the API contract and
 * docs/protocol.md for the wire format.
 *
 * Ring invariants (all sequence arithmetic is modulo 2^32):
 *   tail_seq <= send_seq <= next_seq,  next_seq - tail_seq <= ring_capacity,
 *   the reading with sequence s (tail_seq <= s < next_seq) is in ring[(tail_idx + s - tail_seq) % cap].
 * A reading leaves the ring only through an ACK that covers it or by being overwritten when the
 * ring is full (counted, and visible to the agent as tail_seq moving past what it stored).
 */
#include "epfw.h"

#include <string.h>

#define RETAIN_MAGIC 0x45504657u /* "EPFW" */
#define HDR 4u                   /* version, type, frame sequence (u16) */
#define CRC 4u
#define READING_BYTES 9u
#define READINGS_FIXED 22u

/* ---- little-endian helpers ---- */

static uint8_t *put16(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  return p + 2;
}

static uint8_t *put32(uint8_t *p, uint32_t v) {
  p = put16(p, v);
  return put16(p, v >> 16);
}

static uint8_t *put64(uint8_t *p, uint64_t v) {
  p = put32(p, (uint32_t)v);
  return put32(p, (uint32_t)(v >> 32));
}

static uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* Length-prefixed string, truncated to `max` bytes. */
static uint8_t *putstr(uint8_t *p, const char *s, size_t max) {
  size_t n = s ? strlen(s) : 0;
  if (n > max) n = max;
  *p++ = (uint8_t)n;
  if (n) memcpy(p, s, n);
  return p + n;
}

uint32_t epfw_crc32c(uint32_t crc, const uint8_t *data, size_t len) {
  /* Bitwise (no table): small code, ~8 shifts per byte, fast enough for a UART. */
  crc = ~crc;
  while (len--) {
    unsigned k;
    crc ^= *data++;
    for (k = 0; k < 8; k++) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
  }
  return ~crc;
}

/* ---- time ---- */

static uint64_t uptime(epfw_t *fw, uint32_t now_ms) {
  if (now_ms < fw->up_lo) fw->up_hi++; /* the caller's 32-bit millisecond counter wrapped */
  fw->up_lo = now_ms;
  return ((uint64_t)fw->up_hi << 32) | now_ms;
}

void epfw_set_wall_ms(epfw_t *fw, uint64_t unix_ms, uint32_t now_ms) {
  if (unix_ms > EPFW_MAX_TIME_MS) return; /* nonsense: the agent would reject frames stamped with it */
  fw->wall_off = unix_ms - uptime(fw, now_ms);
  fw->time_set = 1;
}

uint64_t epfw_wall_ms(epfw_t *fw, uint32_t now_ms) {
  uint64_t up = uptime(fw, now_ms);
  return fw->time_set ? up + fw->wall_off : 0;
}

/* ---- ring ---- */

uint32_t epfw_pending(const epfw_t *fw) { return fw->next_seq - fw->tail_seq; }

static uint16_t ring_index(const epfw_t *fw, uint32_t seq) {
  uint32_t i = (uint32_t)fw->tail_idx + (seq - fw->tail_seq);
  if (i >= fw->cfg->ring_capacity) i -= fw->cfg->ring_capacity;
  return (uint16_t)i;
}

/* Drops readings below `seq` (acknowledged or overwritten). */
static void advance_tail(epfw_t *fw, uint32_t seq) {
  fw->tail_idx = ring_index(fw, seq);
  fw->tail_seq = seq;
  if ((int32_t)(fw->send_seq - seq) < 0) fw->send_seq = seq;
}

static void retain(epfw_t *fw) {
  epfw_retained_t *r = fw->cfg->retained;
  if (!r) return;
  r->boot_id = fw->cfg->boot_id;
  r->next_seq = fw->next_seq;
  r->check = r->boot_id ^ r->next_seq ^ RETAIN_MAGIC;
}

int epfw_init(epfw_t *fw, const epfw_config_t *cfg, uint32_t now_ms) {
  epfw_retained_t *r = cfg->retained;
  memset(fw, 0, sizeof *fw);
  if (!cfg->sensors || !cfg->sensor_count || !cfg->ring || !cfg->ring_capacity || !cfg->boot_id) return -1;
  fw->cfg = cfg;
  fw->up_lo = now_ms;
  fw->tail_seq = fw->next_seq = fw->send_seq = 1; /* sequence numbers start at 1 on every boot */
  fw->progress_ms = now_ms;
  fw->hello = 1;
  if (r && r->check == (r->boot_id ^ r->next_seq ^ RETAIN_MAGIC) && r->boot_id != cfg->boot_id) {
    fw->prev_boot_id = r->boot_id;
    fw->prev_last_seq = r->next_seq - 1;
  }
  retain(fw);
  return 0;
}

int epfw_add_at(epfw_t *fw, uint8_t sensor, uint32_t value, uint32_t t_ms, uint32_t now_ms) {
  epfw_slot_t *slot;
  int dropped = 0;
  (void)uptime(fw, now_ms);
  if (sensor >= fw->cfg->sensor_count) return -1;
  if (epfw_pending(fw) >= fw->cfg->ring_capacity) {
    advance_tail(fw, fw->tail_seq + 1);
    fw->stats.dropped++;
    dropped = 1;
  }
  slot = &fw->cfg->ring[ring_index(fw, fw->next_seq)];
  slot->t_ms = t_ms;
  slot->value = value;
  slot->sensor = sensor;
  fw->next_seq++;
  retain(fw);
  return dropped;
}

int epfw_add(epfw_t *fw, uint8_t sensor, uint32_t value, uint32_t now_ms) {
  return epfw_add_at(fw, sensor, value, now_ms, now_ms);
}

/* Everything unacknowledged goes out again, after a HELLO when `hello` is set. */
static void rewind(epfw_t *fw, uint32_t now_ms, int hello) {
  if (fw->send_seq != fw->tail_seq) fw->stats.retransmits++;
  fw->send_seq = fw->tail_seq;
  fw->progress_ms = now_ms;
  if (hello) fw->hello = 1;
}

void epfw_link_up(epfw_t *fw, uint32_t now_ms) { rewind(fw, now_ms, 1); }

/* ---- receiving ---- */

static void apply_ack(epfw_t *fw, const uint8_t *p, uint32_t now_ms) {
  uint32_t acked = get32(p + 4), resend = get32(p + 8);
  if (get32(p) != fw->cfg->boot_id) return; /* meant for an earlier boot */
  /* Only an ACK inside [tail_seq - 1, next_seq - 1] means anything; others are stale. */
  if (acked - (fw->tail_seq - 1) <= fw->next_seq - fw->tail_seq) {
    if (acked + 1 != fw->tail_seq) fw->progress_ms = now_ms;
    advance_tail(fw, acked + 1);
  }
  fw->stats.acks++;
  if ((p[12] & 1u) && resend - fw->tail_seq <= fw->next_seq - fw->tail_seq) {
    if (resend != fw->send_seq) fw->stats.retransmits++;
    fw->send_seq = resend;
    fw->progress_ms = now_ms;
  }
}

/* Decodes the COBS frame in fw->rx in place; returns its raw length or 0 when invalid. */
static size_t cobs_decode_rx(epfw_t *fw) {
  size_t in = 0, out = 0, n = fw->rx_len;
  while (in < n) {
    uint8_t code = fw->rx[in++], i;
    if (code == 0 || in + code - 1u > n) return 0;
    for (i = 1; i < code; i++) fw->rx[out++] = fw->rx[in++];
    if (code != 0xFF && in < n) fw->rx[out++] = 0;
  }
  return out;
}

static void rx_frame(epfw_t *fw, uint32_t now_ms) {
  size_t n = cobs_decode_rx(fw);
  const uint8_t *p = fw->rx;
  if (n < HDR + CRC || epfw_crc32c(0, p, n - CRC) != get32(p + n - CRC) || p[0] != EPFW_PROTO_VERSION) {
    fw->stats.rx_errors++;
    return;
  }
  n -= HDR + CRC;
  if (p[1] == EPFW_T_ACK && n >= 13) {
    apply_ack(fw, p + HDR, now_ms);
  } else if (p[1] == EPFW_T_TIME && n >= 9) {
    epfw_set_wall_ms(fw, (uint64_t)get32(p + HDR) | ((uint64_t)get32(p + HDR + 4) << 32), now_ms);
    fw->stats.time_syncs++;
    if (p[HDR + 8] & 1u) rewind(fw, now_ms, 1); /* HELLO_REQ: the agent (re)started */
  } else {
    fw->stats.rx_errors++; /* unknown type or short payload */
    return;
  }
  fw->stats.rx_frames++;
}

void epfw_rx(epfw_t *fw, const uint8_t *data, size_t len, uint32_t now_ms) {
  while (len--) {
    uint8_t b = *data++;
    if (b == 0) {
      if (fw->rx_skip) fw->stats.rx_errors++; /* longer than anything the agent sends */
      else if (fw->rx_len) rx_frame(fw, now_ms);
      fw->rx_len = fw->rx_skip = 0;
    } else if (fw->rx_len < EPFW_RX_MAX) {
      fw->rx[fw->rx_len++] = b;
    } else {
      fw->rx_skip = 1;
    }
  }
}

/* ---- sending ---- */

/* Starts a frame at out + 1 (room for the COBS code byte); returns the payload pointer. */
static uint8_t *begin(epfw_t *fw, uint8_t *out, uint8_t type) {
  out[1] = EPFW_PROTO_VERSION;
  out[2] = type;
  return put16(out + 3, fw->tx_seq++);
}

/* Appends the CRC, COBS-encodes in place and adds the delimiter; returns the wire length. */
static size_t finish(epfw_t *fw, uint8_t *out, uint8_t *end) {
  size_t n = (size_t)(end - (out + 1)), code = 0, i;
  end = put32(end, epfw_crc32c(0, out + 1, n));
  n += CRC; /* raw frame in out[1..n], at most 254 bytes: one COBS block per zero byte */
  for (i = 1; i <= n; i++) {
    if (out[i] == 0) {
      out[code] = (uint8_t)(i - code);
      code = i;
    }
  }
  out[code] = (uint8_t)(n + 1 - code);
  out[n + 1] = 0;
  fw->stats.frames_sent++;
  return n + 2;
}

static size_t send_hello(epfw_t *fw, uint32_t now_ms, uint8_t *out) {
  const epfw_config_t *c = fw->cfg;
  uint8_t *p = begin(fw, out, EPFW_T_HELLO);
  *p++ = EPFW_PROTO_VERSION;
  *p++ = (uint8_t)(fw->time_set | ((c->flags & EPFW_STAMP_WALL) << 1));
  p = put32(p, c->boot_id);
  p = put64(p, uptime(fw, now_ms));
  p = put32(p, fw->next_seq);
  p = put32(p, fw->tail_seq);
  p = put16(p, c->ring_capacity);
  *p++ = c->sensor_count;
  p = put32(p, fw->prev_boot_id);
  p = put32(p, fw->prev_last_seq);
  p = putstr(p, c->fw_id, EPFW_MAX_NAME);
  p = putstr(p, c->fw_version, EPFW_MAX_NAME);
  fw->hello = 2;
  return finish(fw, out, p);
}

static size_t send_sensor(epfw_t *fw, uint8_t *out) {
  uint8_t i = (uint8_t)(fw->hello - 2);
  const epfw_sensor_t *s = &fw->cfg->sensors[i];
  uint8_t *p = begin(fw, out, EPFW_T_SENSOR);
  p = put32(p, fw->cfg->boot_id);
  *p++ = i;
  *p++ = s->kind;
  p = put32(p, (uint32_t)s->scale_num);
  p = put32(p, (uint32_t)s->scale_den);
  p = putstr(p, s->name, EPFW_MAX_NAME);
  p = putstr(p, s->unit, EPFW_MAX_UNIT);
  fw->hello = (uint8_t)(i + 1u < fw->cfg->sensor_count ? fw->hello + 1 : 0);
  return finish(fw, out, p);
}

static size_t send_readings(epfw_t *fw, uint32_t now_ms, uint8_t *out, size_t cap) {
  uint32_t n = fw->next_seq - fw->send_seq, i;
  uint64_t t = uptime(fw, now_ms);
  uint8_t wall = (uint8_t)(fw->time_set && (fw->cfg->flags & EPFW_STAMP_WALL));
  uint8_t *p = begin(fw, out, EPFW_T_READINGS);
  if (fw->send_seq == fw->tail_seq) fw->progress_ms = now_ms; /* the timeout runs from the oldest one's sending */
  if (n > EPFW_MAX_READINGS) n = EPFW_MAX_READINGS;
  while (2 + HDR + READINGS_FIXED + CRC + n * READING_BYTES > cap) n--; /* no division on cores without one */
  p = put32(p, fw->cfg->boot_id);
  *p++ = wall;
  p = put64(p, wall ? t + fw->wall_off : t);
  p = put32(p, fw->tail_seq);
  p = put32(p, fw->send_seq);
  *p++ = (uint8_t)n;
  for (i = 0; i < n; i++) {
    const epfw_slot_t *s = &fw->cfg->ring[ring_index(fw, fw->send_seq + i)];
    *p++ = s->sensor;
    p = put32(p, now_ms - s->t_ms); /* age */
    p = put32(p, s->value);
  }
  fw->send_seq += n;
  fw->stats.readings_sent += n;
  return finish(fw, out, p);
}

size_t epfw_poll(epfw_t *fw, uint32_t now_ms, uint8_t *out, size_t cap) {
  uint32_t timeout = fw->cfg->retransmit_ms ? fw->cfg->retransmit_ms : 2000u;
  if (cap < EPFW_TX_MIN) return 0;
  if (cap > EPFW_MAX_WIRE_FRAME) cap = EPFW_MAX_WIRE_FRAME;
  (void)uptime(fw, now_ms);
  if (fw->hello == 1) return send_hello(fw, now_ms, out);
  if (fw->hello) return send_sensor(fw, out);
  /* Everything was sent but the oldest is still unacknowledged after the timeout: resend. */
  if (fw->send_seq == fw->next_seq && epfw_pending(fw) && now_ms - fw->progress_ms >= timeout) rewind(fw, now_ms, 0);
  if (fw->send_seq != fw->next_seq) return send_readings(fw, now_ms, out, cap);
  return 0;
}
