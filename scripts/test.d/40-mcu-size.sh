#!/usr/bin/env bash
# The firmware library (firmware-bridge/mcu/) cross-built for a Cortex-M0+ with Debian's
# arm-none-eabi-gcc at -Os: prints its code size (target: under 4 KiB of flash), checks that it
# needs nothing from the C library beyond memcpy/memset/strlen and no software floating point or
# division helpers, and that the README's bare-metal example compiles and links against it.
set -euo pipefail
cd "$ROOT"
LIMIT=4096
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
CC=arm-none-eabi-gcc
FLAGS=(-std=c99 -mcpu=cortex-m0plus -mthumb -Os -ffunction-sections -fdata-sections
       -Wall -Wextra -Wpedantic -Wconversion -Wshadow -Werror)
$CC "${FLAGS[@]}" -c firmware-bridge/mcu/epfw.c -o "$T/epfw.o"

echo "mcu-size: firmware-bridge/mcu/epfw.c for cortex-m0plus, $($CC --version | head -1)"
arm-none-eabi-size "$T/epfw.o"
read -r text data bss _ < <(arm-none-eabi-size "$T/epfw.o" | awk 'NR==2 {print $1, $2, $3}')
flash=$((text + data))
echo "mcu-size: flash ${flash} bytes (text ${text} + data ${data}), static RAM ${bss} bytes; limit ${LIMIT}"
echo "mcu-size: largest functions:"
arm-none-eabi-nm --size-sort -S "$T/epfw.o" | tail -5 | while read -r _ size _ name; do
  printf '  %6d  %s\n' "$((16#$size))" "$name"
done

# Undefined symbols: only these three from <string.h>.
undefined=$(arm-none-eabi-nm -u "$T/epfw.o" | awk '{print $2}' | sort | tr '\n' ' ')
echo "mcu-size: needs: ${undefined}"
for s in $undefined; do
  case "$s" in
    memcpy|memset|strlen) ;;
    *) echo "mcu-size: FAIL: the library needs '$s' (only memcpy, memset, strlen are allowed)" >&2; exit 1 ;;
  esac
done

# The README example, with the board functions stubbed, compiles and links (newlib-nano, no OS).
awk '/^```c$/ {on=1; next} /^```$/ {on=0} on' firmware-bridge/mcu/README.md > "$T/example_body.c"
cat > "$T/example.c" <<'C'
#include <stddef.h>
#include <stdint.h>
static volatile uint32_t ticks;
uint32_t millis(void) { return ticks++; }
uint32_t hw_random32(void) { return 0x2545F491u ^ ticks; }
void board_init(void) {}
void uart_init(uint32_t baud) { (void)baud; }
size_t uart_read_nonblocking(uint8_t *b, size_t n) { (void)b; (void)n; return 0; }
int sample_due(uint32_t now) { return (now & 1023u) == 0; }
int32_t read_temp_centi(void) { return 2137; }
int32_t read_pressure_deci(void) { return 10132; }
int uart_tx_idle(void) { return 1; }
void uart_write_dma(const uint8_t *b, size_t n) { (void)b; (void)n; }
#include "example_body.c"
C
$CC "${FLAGS[@]}" -Wno-pedantic -I firmware-bridge/mcu -c "$T/example.c" -o "$T/example.o"
$CC -mcpu=cortex-m0plus -mthumb -Os -Wl,--gc-sections -specs=nano.specs -specs=nosys.specs \
    "$T/example.o" "$T/epfw.o" -o "$T/example.elf"
echo "mcu-size: README example linked (whole image with newlib-nano start-up code):"
arm-none-eabi-size "$T/example.elf"

if [ "$flash" -ge "$LIMIT" ]; then
  echo "mcu-size: FAIL: ${flash} bytes of flash, the target is under ${LIMIT}" >&2
  exit 1
fi
echo "mcu-size: OK (${flash} < ${LIMIT} bytes)"
