// [[source]] type = "serial": an MCU speaking the edgepipe wire protocol (docs/protocol.md) over
// a UART or USB CDC device.
#include <algorithm>

#include "config_schema.h"
#include "edgepipe/firmware_bridge/serial_source.h"

namespace edgepipe::agent::cfg {
namespace {
constexpr int64_t kMs = 1000;
constexpr int64_t kSec = 1'000'000;
constexpr int64_t kDay = 86'400 * kSec;
}  // namespace

const Section<fb::SerialOptions>& SerialSection() {
  static const Section<fb::SerialOptions> s = [] {
    using O = fb::SerialOptions;
    Section<O> sec;
    sec.title = "[[source]] type = \"serial\"";
    sec.doc =
        "A microcontroller speaking the edgepipe wire protocol (docs/protocol.md) over a UART or USB CDC device. "
        "Readings are named and given units from the MCU's HELLO, stamped in wall time (MCU time mapped with "
        "drift correction, or the MCU's own wall time once it has it), and acknowledged to the MCU only once "
        "durably stored. The device may be absent: it is opened (and reopened after errors) with backoff. See "
        "docs/operations.md, \"Serial devices\".";
    sec.fields.push_back(StringField<O>("device", &O::device,
        "Device path. Prefer the stable `/dev/serial/by-id/...` name over `/dev/ttyUSB0`, which can change on replug.",
        true));
    sec.fields.push_back(CustomField<O>("baud", "integer (a standard rate: 9600, 19200, 38400, 57600, 115200, 230400, "
        "460800, 921600, 1000000, 2000000, 3000000, 4000000, ...)", "115200",
        "Line speed; must match the firmware. 8 data bits are always used.",
        [](O& o, const toml::node& n, Reporter& r, const std::string& p) {
          auto v = ReadInt(n, r, p, 1, 4'000'000);
          if (!v) return;
          const auto& rates = fb::StandardBaudRates();
          if (std::find(rates.begin(), rates.end(), static_cast<uint32_t>(*v)) == rates.end()) {
            std::string list;
            for (uint32_t b : rates) list += (list.empty() ? "" : ", ") + std::to_string(b);
            r.Add(n.source(), p + ": " + std::to_string(*v) + " is not a standard baud rate (" + list + ")");
            return;
          }
          o.baud = static_cast<uint32_t>(*v);
        }));
    sec.fields.push_back(EnumField<O, fb::Parity>("parity", &O::parity,
        {{"none", fb::Parity::kNone}, {"odd", fb::Parity::kOdd}, {"even", fb::Parity::kEven}}, "Parity bit."));
    sec.fields.push_back(CustomField<O>("stop_bits", "1, 1.5 or 2", "1", "Stop bits.",
        [](O& o, const toml::node& n, Reporter& r, const std::string& p) {
          std::optional<double> v;
          if (auto i = n.value<int64_t>(); i && n.is_integer()) v = static_cast<double>(*i);
          else if (auto d = n.as_floating_point()) v = d->get();
          else if (auto str = n.as_string()) {
            if (str->get() == "1") v = 1;
            else if (str->get() == "1.5") v = 1.5;
            else if (str->get() == "2") v = 2;
          }
          if (v == 1.0) o.stop_bits = fb::StopBits::kOne;
          else if (v == 1.5) o.stop_bits = fb::StopBits::kOnePointFive;
          else if (v == 2.0) o.stop_bits = fb::StopBits::kTwo;
          else r.Add(n.source(), p + ": expected 1, 1.5 or 2, got " + Describe(n));
        }));
    sec.fields.push_back(EnumField<O, fb::FlowControl>("flow_control", &O::flow_control,
        {{"none", fb::FlowControl::kNone}, {"software", fb::FlowControl::kSoftware},
         {"hardware", fb::FlowControl::kHardware}},
        "`hardware` = RTS/CTS, `software` = XON/XOFF (unusable with this binary protocol unless the "
        "driver handles it below the data).")); 
    sec.fields.push_back(BoolField<O>("exclusive", &O::exclusive,
        "Lock the device (TIOCEXCL) so that no second program (a terminal, ModemManager) can open it."));
    sec.fields.push_back(DurationField<O>("reconnect_min", &O::reconnect_min_us, 10 * kMs, kDay,
        "First delay before reopening a device that failed or disappeared; doubles per failure."));
    sec.fields.push_back(DurationField<O>("reconnect_max", &O::reconnect_max_us, 10 * kMs, kDay,
        "Longest delay between reopening attempts."));
    sec.fields.push_back(StringField<O>("sensor_prefix", &O::sensor_prefix,
        "Prepended to the sensor names the MCU announces, e.g. `\"boiler/\"` gives `boiler/t-17`."));
    sec.fields.push_back(DurationField<O>("time_sync_interval", &O::time_sync_interval_us, kSec, kDay,
        "How often the agent sends its wall clock (TIME) to the MCU."));
    sec.fields.push_back(DurationField<O>("hello_retry", &O::hello_retry_us, 100 * kMs, kDay,
        "How often to ask again for HELLO (the sensor table) while it is missing."));
    sec.fields.push_back(DurationField<O>("idle_timeout", &O::idle_timeout_us, kSec, kDay,
        "No valid frame for this long: log a warning, show state `idle` and ask the MCU for HELLO."));
    sec.fields.push_back(BoolField<O>("quarantine_corrupt_frames", &O::quarantine_corrupt_frames,
        "Also keep the raw bytes of frames that fail COBS/CRC checks in quarantine (at most 60 a minute). "
        "They are always counted; what they carried is resent by the MCU."));
    sec.check = [](O& o, const toml::table& t, Reporter& r, const std::string& p) {
      if (o.reconnect_max_us < o.reconnect_min_us)
        r.Add((t.contains("reconnect_max") ? *t["reconnect_max"].node() : static_cast<const toml::node&>(t)).source(),
              p + ".reconnect_max: must not be shorter than reconnect_min");
    };
    sec.fields.insert(sec.fields.begin(),
                      {HandledField<O>("type", "string", "", "`\"serial\"`.", true),
                       HandledField<O>("name", "string", "(the type, plus an index if repeated)",
                                       "Source name, unique; recorded with every reading and used to key its state "
                                       "in the buffer (keep it stable).")});
    return sec;
  }();
  return s;
}

}  // namespace edgepipe::agent::cfg
