// edgepipe command line. Exit status: 0 success, 1 runtime failure, 64 usage error (EX_USAGE),
// 78 invalid configuration (EX_CONFIG).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "edgepipe/agent/agent.h"
#include "edgepipe/agent/config.h"
#include "edgepipe/core/log.h"
#include "edgepipe/core/time_util.h"

#ifndef EDGEPIPE_VERSION
#define EDGEPIPE_VERSION "0.0.0"
#endif

namespace {

using namespace edgepipe;
using namespace edgepipe::agent;

constexpr int kExitUsage = 64;
constexpr int kExitConfig = 78;

void PrintProblems(const std::vector<ConfigProblem>& problems) {
  for (const auto& p : problems) fprintf(stderr, "%s\n", p.ToString().c_str());
  fprintf(stderr, "%zu problem%s found; see docs/configuration.md or `edgepipe config-reference`.\n",
          problems.size(), problems.size() == 1 ? "" : "s");
}

std::string Human(uint64_t bytes) {
  char buf[32];
  if (bytes >= (1u << 20)) snprintf(buf, sizeof buf, "%.1f MiB", bytes / 1048576.0);
  else if (bytes >= 1024) snprintf(buf, sizeof buf, "%.1f KiB", bytes / 1024.0);
  else snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  return buf;
}

nlohmann::json SummaryJson(const RunSummary& s) {
  nlohmann::json j;
  j["duration_s"] = s.duration_us / 1e6;
  j["destination"] = s.destination;
  j["readings"] = {{"received", s.validation.received}, {"accepted", s.validation.passed},
                   {"flagged", s.validation.flagged}, {"rejected", s.validation.rejected},
                   {"duplicates_dropped", s.validation.duplicates_dropped}};
  j["uploads"] = {{"objects", s.uploads.objects},
                  {"readings", s.uploads.readings},
                  {"quarantine_objects", s.uploads.quarantine_objects},
                  {"quarantine_records", s.uploads.quarantine_records},
                  {"bytes", s.uploads.bytes},
                  {"raw_bytes", s.uploads.raw_bytes},
                  {"quarantine_bytes", s.uploads.quarantine_bytes},
                  {"failures", s.uploads.failures},
                  {"last_key", s.uploads.last_key}};
  j["buffer"] = {{"pending_readings", s.buffer.pending_readings},
                 {"claimed_readings", s.buffer.claimed_readings},
                 {"memory_readings", s.buffer.memory_readings},
                 {"quarantine_rows", s.buffer.quarantine_rows},
                 {"db_bytes", s.buffer.db_bytes}};
  for (const auto& h : s.sources)
    j["sources"].push_back({{"name", h.name}, {"type", h.type}, {"state", h.state}, {"readings", h.readings},
                            {"errors", h.errors}, {"last_error", h.last_error}, {"counters", h.counters}});
  return j;
}

void PrintSummary(const RunSummary& s) {
  printf("\nedgepipe ran for %.1f s\n", s.duration_us / 1e6);
  std::string rejected;
  for (const auto& [rule, n] : s.validation.rejected) rejected += (rejected.empty() ? "" : ", ") + rule + ": " + std::to_string(n);
  printf("  readings:   %llu received, %llu accepted, %llu rejected to quarantine%s\n",
         static_cast<unsigned long long>(s.validation.received), static_cast<unsigned long long>(s.validation.passed),
         static_cast<unsigned long long>(s.validation.rejected_total()),
         rejected.empty() ? "" : (" (" + rejected + ")").c_str());
  printf("  delivered:  %llu objects, %llu readings, %s compressed (%s as NDJSON/CSV) to %s\n",
         static_cast<unsigned long long>(s.uploads.reading_objects()), static_cast<unsigned long long>(s.uploads.readings),
         Human(s.uploads.reading_bytes()).c_str(), Human(s.uploads.reading_raw_bytes()).c_str(), s.destination.c_str());
  if (s.uploads.readings)
    printf("              %.2f bytes per reading uploaded\n",
           static_cast<double>(s.uploads.reading_bytes()) / s.uploads.readings);
  printf("  quarantine: %llu objects, %llu records, %s compressed\n",
         static_cast<unsigned long long>(s.uploads.quarantine_objects),
         static_cast<unsigned long long>(s.uploads.quarantine_records), Human(s.uploads.quarantine_bytes).c_str());
  printf("  buffer:     %llu readings still buffered (delivered on the next run)\n",
         static_cast<unsigned long long>(s.buffer.pending_readings + s.buffer.claimed_readings + s.buffer.memory_readings));
  if (s.uploads.failures) printf("  upload failures: %llu\n", static_cast<unsigned long long>(s.uploads.failures));
}

int CmdRun(const std::string& config_path, const std::string& state_dir, const std::string& duration,
           const std::string& log_level, bool summary, const std::string& summary_json) {
  ParseResult pr;
  if (config_path.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(state_dir, ec);
    if (ec) {
      fprintf(stderr, "edgepipe: cannot create state directory %s: %s\n", state_dir.c_str(), ec.message().c_str());
      return 1;
    }
    std::string abs = std::filesystem::absolute(state_dir).lexically_normal().string();
    while (abs.size() > 1 && abs.back() == '/') abs.pop_back();
    fprintf(stderr, "edgepipe: no --config given: running the embedded demo configuration "
                    "(simulated sensors -> %s/outbox); `edgepipe default-config` prints it\n", abs.c_str());
    pr = ParseConfigText(DefaultConfigText(abs), "<embedded>");
  } else {
    pr = LoadConfigFile(config_path);
  }
  if (!pr.config) {
    PrintProblems(pr.problems);
    return kExitConfig;
  }
  Config& cfg = *pr.config;
  LogLevel level = cfg.agent.log_level;
  if (!log_level.empty() && !ParseLogLevel(log_level, &level)) {
    fprintf(stderr, "edgepipe: --log-level: unknown level '%s' (error, warning, notice, info, debug)\n", log_level.c_str());
    return kExitUsage;
  }
  SetLogLevel(level);
  for (const ConfigProblem& w : pr.warnings) EP_LOG_WARN("config", "%s", w.ToString().c_str());
  int64_t duration_us = 0;
  if (!duration.empty()) {
    auto d = ParseDuration(duration);
    if (!d || *d <= 0) {
      fprintf(stderr, "edgepipe: --duration: expected a duration such as 30s or 5m, got '%s'\n", duration.c_str());
      return kExitUsage;
    }
    duration_us = *d;
  }
  AgentHooks hooks;
  hooks.log_level_from_command_line = !log_level.empty();
  Agent agent(cfg, RealClock::Default(), hooks);
  Status s = agent.Start();
  if (!s.ok()) {
    EP_LOG_ERROR("agent", "cannot start: %s", s.ToString().c_str());
    agent.Shutdown().IgnoreError();
    return s.code() == StatusCode::kInvalidArgument ? kExitConfig : 1;
  }
  s = agent.Run(duration_us);
  RunSummary sum = agent.Summary();
  if (summary || duration_us > 0) PrintSummary(sum);
  if (!summary_json.empty()) {
    std::ofstream out(summary_json);
    out << SummaryJson(sum).dump(2) << "\n";
  }
  if (agent.upload_abandoned()) {
    // An upload thread may still be inside the sink: leave without running destructors. The
    // buffer is committed; the abandoned batch stays claimed and is re-sent at the next start.
    fflush(stdout);
    fflush(stderr);
    _exit(s.ok() ? 0 : 1);
  }
  return s.ok() ? 0 : 1;
}

int CmdCheckConfig(const std::string& path) {
  ParseResult pr = LoadConfigFile(path);
  if (!pr.config) {
    PrintProblems(pr.problems);
    return kExitConfig;
  }
  for (const ConfigProblem& w : pr.warnings) fprintf(stderr, "%s\n", w.ToString().c_str());
  const Config& c = *pr.config;
  const std::string ok = pr.warnings.empty() ? "OK"
                                             : StrFormat("OK with %zu warning%s", pr.warnings.size(),
                                                         pr.warnings.size() == 1 ? "" : "s");
  printf("%s: %s (device %s, %zu source%s, buffer %s, destination %s)\n", path.c_str(), ok.c_str(), c.device.id.c_str(),
         c.sources.size(), c.sources.size() == 1 ? "" : "s", c.buffer.path.c_str(), c.upload.url.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"edgepipe: collect, validate, buffer and upload sensor readings"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("edgepipe ") + EDGEPIPE_VERSION);

  std::string config, state_dir = "edgepipe-demo", duration, log_level, summary_json;
  bool summary = false, json = false;

  auto* run = app.add_subcommand("run", "Run the agent in the foreground (what systemd starts)");
  run->add_option("-c,--config", config, "Configuration file; without it the embedded demo configuration runs");
  run->add_option("--state-dir", state_dir, "Directory for the embedded demo's buffer and outbox")->capture_default_str();
  run->add_option("--duration", duration, "Stop after this long (e.g. 30s), then drain and print a summary");
  run->add_option("--log-level", log_level, "Override agent.log_level (error, warning, notice, info, debug)");
  run->add_flag("--summary", summary, "Print a summary of what was collected and delivered on exit");
  run->add_option("--summary-json", summary_json, "Write the exit summary as JSON to this file");

  std::string check_path;
  auto* check = app.add_subcommand("check-config", "Validate a configuration file; exit 78 listing every problem");
  check->add_option("file", check_path, "Configuration file")->required();

  auto* status = app.add_subcommand("status", "Show buffer depth, oldest pending reading, last upload, counters");
  status->add_option("-c,--config", config, "Configuration file")->required();
  status->add_flag("--json", json, "Machine-readable output");

  auto* version = app.add_subcommand("version", "Print the version");
  auto* defconf = app.add_subcommand("default-config", "Print the embedded default configuration");
  defconf->add_option("--state-dir", state_dir, "State directory to substitute")->capture_default_str();
  auto* reference = app.add_subcommand("config-reference", "Print the configuration reference (Markdown)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  }

  if (*run) return CmdRun(config, state_dir, duration, log_level, summary, summary_json);
  if (*check) return CmdCheckConfig(check_path);
  if (*status) return CmdStatus(config, json);
  if (*version) {
    printf("edgepipe %s\n", EDGEPIPE_VERSION);
    return 0;
  }
  if (*defconf) {
    std::string abs = std::filesystem::absolute(state_dir).lexically_normal().string();
    while (abs.size() > 1 && abs.back() == '/') abs.pop_back();
    printf("%s", DefaultConfigText(abs).c_str());
    return 0;
  }
  if (*reference) {
    printf("%s", ConfigReferenceMarkdown().c_str());
    return 0;
  }
  return kExitUsage;
}
