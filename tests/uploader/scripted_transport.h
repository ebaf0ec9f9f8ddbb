// An HttpTransport that replays scripted replies and records every request (uploader tests).
#pragma once

#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "edgepipe/uploader/http.h"

namespace edgepipe::testing {

struct RecordedRequest {
  std::string method, url, body;
  uploader::HttpHeaders headers;
  std::string Header(const std::string& name) const {
    for (const auto& [k, v] : headers)
      if (k == name) return v;
    return "";
  }
};

class ScriptedTransport final : public uploader::HttpTransport {
 public:
  using Reply = std::function<Result<uploader::HttpResponse>(const RecordedRequest&)>;

  // Replies in order; when the script is empty, `fallback` answers (default: 200 with an ETag).
  void Push(Result<uploader::HttpResponse> r) {
    std::lock_guard<std::mutex> lock(mu_);
    script_.push_back([r](const RecordedRequest&) { return r; });
  }
  void Push(Reply f) {
    std::lock_guard<std::mutex> lock(mu_);
    script_.push_back(std::move(f));
  }
  void SetFallback(Reply f) {
    std::lock_guard<std::mutex> lock(mu_);
    fallback_ = std::move(f);
  }

  Result<uploader::HttpResponse> Send(const uploader::HttpRequest& req) override {
    RecordedRequest rec{req.method, req.url, std::string(req.body), req.headers};
    Reply f;
    {
      std::lock_guard<std::mutex> lock(mu_);
      requests.push_back(rec);
      if (!script_.empty()) {
        f = script_.front();
        script_.pop_front();
      } else {
        f = fallback_;
      }
    }
    if (f) return f(rec);
    return Response(200, "", {{"etag", "\"etag\""}});
  }

  static uploader::HttpResponse Response(int status, std::string body = "", uploader::HttpHeaders headers = {}) {
    uploader::HttpResponse r;
    r.status = status;
    r.body = std::move(body);
    r.headers = std::move(headers);
    return r;
  }
  static uploader::HttpResponse Error(int status, const std::string& code, uploader::HttpHeaders headers = {}) {
    return Response(status, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>" + code +
                                "</Code><Message>scripted</Message><RequestId>tx1</RequestId></Error>",
                    std::move(headers));
  }

  std::vector<RecordedRequest> Requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests;
  }

  std::vector<RecordedRequest> requests;

 private:
  std::mutex mu_;
  std::deque<Reply> script_;
  Reply fallback_;
};

}  // namespace edgepipe::testing
