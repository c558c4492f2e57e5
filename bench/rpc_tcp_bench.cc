// rpc_tcp_bench: request/response over loopback TCP, wxsim's RPC beside gRPC C++.
//
// Both implementations serve the same echo: a request carrying
// --payload-bytes (1 KiB) of payload comes back in the reply, parsed and
// serialised as protobuf on both ends. Each runs one server thread and one
// client thread, each with its own event loop (wxsim: an io_context under an
// AsioRuntime, the RpcEchoServer and an RpcEndpoint; gRPC: the async
// completion-queue API), on 127.0.0.1 over one TCP connection. gRPC may start
// helper threads of its own; the CPU column counts them.
//
// The client is a closed loop: `concurrency` callers each keep exactly one
// call outstanding and issue the next as soon as the previous completes.
// After --warmup-s, calls are measured for --duration-s; a call counts if it
// both started and ended inside that window. Reported per implementation and
// concurrency: requests/s, p50 and p99 latency in microseconds, process CPU
// time per request in microseconds (both threads and any library thread),
// failed calls; and the ratios wxsim/gRPC. With --repeat N every
// configuration runs N times, alternating the implementations, and the
// ratios compare the runs with the median requests/s.
//
// The gRPC half is compiled only when CMake found gRPC (WXSIM_BENCH_GRPC);
// gRPC is a benchmark peer, never a dependency of the product.
#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "nodes/echo/echo.pb.h"
#include "nodes/echo/rpc_echo.h"
#include "nodes/prod/asio_runtime.h"
#include "nodes/rpc/endpoint.h"

#ifdef WXSIM_BENCH_HAVE_GRPC
#include <grpcpp/grpcpp.h>

#include "bench/grpc_echo.grpc.pb.h"
#endif

namespace wx::bench {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

constexpr NodeId kServerNode{1};
constexpr NodeId kClientNode{2};
// Per-call deadline on both sides; on loopback only a broken run reaches it.
constexpr Duration kCallTimeout = seconds(5);
// Latency samples kept per configuration (8 bytes each); calls beyond it are
// still counted, only their latency is not sampled.
constexpr size_t kLatencySamplesMax = size_t{1} << 24;
// Upper bound of --repeat.
constexpr size_t kRepeatMax = 100;
// How long a client may wait for its connection before the run is abandoned.
constexpr auto kConnectBound = std::chrono::seconds(10);
// gRPC: server calls allowed to finish at shutdown.
constexpr auto kGrpcShutdownGrace = std::chrono::seconds(1);

struct Options {
  double duration_s = 5;
  double warmup_s = 1;
  std::vector<size_t> concurrency = {1, 16, 64};
  size_t payload_bytes = 1024;
  std::string impl = "both";
  size_t repeat = 1;
};

// What one client run measured inside its window.
struct Samples {
  uint64_t measured = 0;  // calls that started and ended inside the window
  uint64_t errors = 0;    // failed calls or wrong replies, at any time
  std::vector<int64_t> latencies_ns;

  void add(int64_t latency_ns) {
    ++measured;
    if (latencies_ns.size() < kLatencySamplesMax) latencies_ns.push_back(latency_ns);
  }
};

struct Figures {
  double requests_per_s = 0;
  double p50_us = 0;
  double p99_us = 0;
  double cpu_us_per_request = 0;
  uint64_t errors = 0;
};

// The measurement window, as the steady clock sees it.
struct Window {
  Clock::time_point start, end;
};

Duration process_cpu() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  const auto us = [](const timeval& t) { return int64_t{t.tv_sec} * 1'000'000 + t.tv_usec; };
  return microseconds(us(u.ru_utime) + us(u.ru_stime));
}

double percentile_us(std::vector<int64_t>& v, double q) {
  if (v.empty()) return 0;
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return static_cast<double>(v[k]) / 1e3;
}

// Runs the client (`client()` on its own thread, returning its Samples)
// while this thread samples the process CPU time at the window's edges.
template <class ClientFn>
Figures measure(const Window& w, ClientFn client) {
  std::packaged_task<Samples()> task(std::move(client));
  std::future<Samples> result = task.get_future();
  std::thread client_thread(std::move(task));
  std::this_thread::sleep_until(w.start);
  const Duration cpu0 = process_cpu();
  std::this_thread::sleep_until(w.end);
  const Duration cpu1 = process_cpu();
  client_thread.join();
  Samples s = result.get();
  Figures f;
  const double window_s = std::chrono::duration<double>(w.end - w.start).count();
  f.requests_per_s = static_cast<double>(s.measured) / window_s;
  f.p50_us = percentile_us(s.latencies_ns, 0.50);
  f.p99_us = percentile_us(s.latencies_ns, 0.99);
  f.cpu_us_per_request = s.measured ? (cpu1 - cpu0).us_f() / static_cast<double>(s.measured) : 0;
  f.errors = s.errors;
  return f;
}

// --- wxsim: RpcEchoServer and RpcEndpoint on AsioRuntime ------------------------------

// A closed-loop client run, owned by the client thread.
struct WxRun {
  TimePoint start, end;  // the window on the client runtime's clock
  size_t callers = 0;
  size_t callers_done = 0;
  asio::io_context* io = nullptr;
  Samples samples;
};

Task<void> wx_caller(Runtime& rt, rpc::RpcEndpoint& ep, echo::EchoRequest request, WxRun* run) {
  rpc::CallOptions options;
  options.timeout = kCallTimeout;
  for (;;) {
    const TimePoint t0 = rt.now();
    if (t0 >= run->end) break;
    rpc::Result<echo::EchoReply> r =
        co_await ep.call<echo::EchoReply>(kServerNode, echo::kEchoMethod, request, options);
    const TimePoint t1 = rt.now();
    if (!r.ok() || r->payload().size() != request.payload().size()) {
      ++run->samples.errors;
    } else if (t0 >= run->start && t1 <= run->end) {
      run->samples.add((t1 - t0).ns());
    }
  }
  if (++run->callers_done == run->callers) run->io->stop();
}

prod::AsioRuntimeConfig quiet_config() {
  prod::AsioRuntimeConfig c;
  c.seed = 1;
  c.log_level = LogLevel::warn;
  return c;
}

// The server side: its own thread running an io_context with an AsioRuntime
// listening on a free port of 127.0.0.1, and the RpcEchoServer node.
class WxServerThread {
 public:
  WxServerThread(size_t workers, std::string data_dir) {
    std::promise<uint16_t> port_promise;
    std::future<uint16_t> port_future = port_promise.get_future();
    thread_ = std::thread(
        [this, workers, data_dir = std::move(data_dir),
         promise = std::move(port_promise)]() mutable { serve(workers, data_dir, promise); });
    try {
      port_ = port_future.get();
    } catch (...) {
      thread_.join();
      throw;
    }
  }
  WxServerThread(const WxServerThread&) = delete;
  WxServerThread& operator=(const WxServerThread&) = delete;
  ~WxServerThread() {
    io_.stop();  // thread-safe
    thread_.join();
  }
  uint16_t port() const { return port_; }

 private:
  void serve(size_t workers, const std::string& data_dir, std::promise<uint16_t>& port_promise) {
    std::unique_ptr<prod::AsioRuntime> rt;
    std::unique_ptr<echo::RpcEchoServer> node;
    try {
      prod::AsioRuntimeConfig c = quiet_config();
      c.listen = asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0);
      c.data_dir = data_dir;
      rt = std::make_unique<prod::AsioRuntime>(io_, kServerNode, c);
      echo::RpcEchoConfig ec;
      ec.cost = Duration::zero();
      ec.server.workers = workers;
      node = std::make_unique<echo::RpcEchoServer>(*rt, ec);
      node->start();
    } catch (...) {
      port_promise.set_exception(std::current_exception());
      return;
    }
    port_promise.set_value(*rt->listen_port());
    io_.run();       // until the destructor stops it
    rt->shutdown();  // tasks first, then the node, then the runtime
    node.reset();
  }

  asio::io_context io_;
  uint16_t port_ = 0;
  std::thread thread_;
};

Figures run_wxsim(size_t concurrency, size_t payload_bytes, const Window& w,
                  const std::string& data_dir) {
  WxServerThread server(std::max<size_t>(1, concurrency), data_dir);  // a worker per caller
  const uint16_t port = server.port();
  return measure(w, [port, concurrency, payload_bytes, w] {
    asio::io_context io;
    prod::AsioRuntimeConfig c = quiet_config();
    c.peers[kServerNode] = asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port);
    prod::AsioRuntime rt(io, kClientNode, c);
    rpc::RpcEndpoint ep(rt);
    ep.start();
    WxRun run;
    const auto to_local = [&rt](Clock::time_point t) {
      return rt.now() +
             nanoseconds(
                 std::chrono::duration_cast<std::chrono::nanoseconds>(t - Clock::now()).count());
    };
    run.start = to_local(w.start);
    run.end = to_local(w.end);
    run.callers = concurrency;
    run.io = &io;
    echo::EchoRequest request;
    request.set_payload(std::string(payload_bytes, 'x'));
    for (size_t i = 0; i < concurrency; ++i) rt.spawn(wx_caller(rt, ep, request, &run), "caller");
    io.run();  // the last caller stops it
    rt.shutdown();
    if (rt.failed()) throw std::runtime_error("wxsim client: " + rt.failure());
    return std::move(run.samples);
  });
}

// --- gRPC: the same echo on the async completion-queue API --------------------------

#ifdef WXSIM_BENCH_HAVE_GRPC

// One server thread draining one completion queue. `slots` requests are kept
// posted, so no caller waits for the server to ask for the next call.
class GrpcEchoServer {
 public:
  explicit GrpcEchoServer(size_t slots) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&service_);
    cq_ = builder.AddCompletionQueue();
    server_ = builder.BuildAndStart();
    if (!server_ || port_ == 0) throw std::runtime_error("grpc: the server did not start");
    for (size_t i = 0; i < slots; ++i) post_slot();
    thread_ = std::thread([this] { serve(); });
  }
  GrpcEchoServer(const GrpcEchoServer&) = delete;
  GrpcEchoServer& operator=(const GrpcEchoServer&) = delete;
  ~GrpcEchoServer() {
    stopping_ = true;
    server_->Shutdown(std::chrono::system_clock::now() + kGrpcShutdownGrace);
    cq_->Shutdown();
    thread_.join();
  }
  int port() const { return port_; }

 private:
  struct Slot {
    grpc::ServerContext ctx;
    EchoMsg request, reply;
    grpc::ServerAsyncResponseWriter<EchoMsg> writer{&ctx};
    bool replied = false;
  };
  void post_slot() {
    auto* s = new Slot;
    service_.RequestEcho(&s->ctx, &s->request, &s->writer, cq_.get(), cq_.get(), s);
  }
  void serve() {
    void* tag = nullptr;
    bool ok = false;
    while (cq_->Next(&tag, &ok)) {
      auto* s = static_cast<Slot*>(tag);
      if (!ok || s->replied) {  // the reply went out (or the call died): done with it
        delete s;
        continue;
      }
      if (!stopping_) post_slot();
      s->reply.set_payload(std::move(*s->request.mutable_payload()));
      s->replied = true;
      s->writer.Finish(s->reply, grpc::Status::OK, s);
    }
  }

  Echo::AsyncService service_;
  std::unique_ptr<grpc::ServerCompletionQueue> cq_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

Samples grpc_client(int port, size_t concurrency, size_t payload_bytes, const Window& w) {
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateChannel(fmt::format("127.0.0.1:{}", port), grpc::InsecureChannelCredentials());
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + kConnectBound)) {
    throw std::runtime_error("grpc: could not connect to the server");
  }
  std::unique_ptr<Echo::Stub> stub = Echo::NewStub(channel);
  grpc::CompletionQueue cq;
  EchoMsg request;
  request.set_payload(std::string(payload_bytes, 'x'));
  struct Call {
    grpc::ClientContext ctx;
    EchoMsg reply;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncResponseReader<EchoMsg>> reader;
    Clock::time_point started;
  };
  const auto issue = [&] {
    auto* c = new Call;
    c->started = Clock::now();
    c->ctx.set_deadline(std::chrono::system_clock::now() +
                        std::chrono::nanoseconds(kCallTimeout.ns()));
    c->reader = stub->AsyncEcho(&c->ctx, request, &cq);
    c->reader->Finish(&c->reply, &c->status, c);
  };
  Samples samples;
  size_t outstanding = 0;
  for (size_t i = 0; i < concurrency && Clock::now() < w.end; ++i, ++outstanding) issue();
  void* tag = nullptr;
  bool ok = false;
  while (outstanding > 0 && cq.Next(&tag, &ok)) {
    std::unique_ptr<Call> c(static_cast<Call*>(tag));
    const Clock::time_point t1 = Clock::now();
    if (!ok || !c->status.ok() || c->reply.payload().size() != payload_bytes) {
      ++samples.errors;
    } else if (c->started >= w.start && t1 <= w.end) {
      samples.add(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - c->started).count());
    }
    if (t1 < w.end) {
      issue();
    } else {
      --outstanding;
    }
  }
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) delete static_cast<Call*>(tag);
  return samples;
}

Figures run_grpc(size_t concurrency, size_t payload_bytes, const Window& w) {
  GrpcEchoServer server(std::max<size_t>(1, concurrency));
  const int port = server.port();
  return measure(w, [port, concurrency, payload_bytes, w] {
    return grpc_client(port, concurrency, payload_bytes, w);
  });
}

#endif  // WXSIM_BENCH_HAVE_GRPC

// --- driver ----------------------------------------------------------------------------

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  if (!(in >> one >> five >> fifteen)) return "unknown";
  return fmt::format("{} {} {}", one, five, fifteen);
}

Window next_window(const Options& o) {
  Window w;
  w.start = Clock::now() +
            std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.warmup_s));
  w.end = w.start +
          std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.duration_s));
  return w;
}

// The run with the median requests/s (the upper one of an even count).
Figures median_run(std::vector<Figures> runs) {
  std::sort(runs.begin(), runs.end(),
            [](const Figures& a, const Figures& b) { return a.requests_per_s < b.requests_per_s; });
  return runs[runs.size() / 2];
}

void print_row(size_t concurrency, std::string_view impl, const Figures& f) {
  fmt::print("{:>11} | {:<5} | {:>10.0f} | {:>8.1f} | {:>8.1f} | {:>10.1f} | {:>6}\n", concurrency,
             impl, f.requests_per_s, f.p50_us, f.p99_us, f.cpu_us_per_request, f.errors);
  std::fflush(stdout);
}

int run(const Options& o) {
  const bool want_wx = o.impl == "both" || o.impl == "wxsim";
  bool want_grpc = o.impl == "both" || o.impl == "grpc";
#ifndef WXSIM_BENCH_HAVE_GRPC
  if (want_grpc) {
    fmt::print("note: built without gRPC (WXSIM_BENCH_GRPC=OFF or gRPC not found); wxsim only\n");
    want_grpc = false;
  }
#endif
  const std::string data_dir =
      (std::filesystem::temp_directory_path() / fmt::format("wxsim_rpc_tcp_bench_{}", ::getpid()))
          .string();
  fmt::print(
      "rpc_tcp_bench: echo, {}-byte payload, 127.0.0.1, closed loop; {:.1f} s measured after "
      "{:.1f} s warm-up per row\n",
      o.payload_bytes, o.duration_s, o.warmup_s);
  fmt::print("cores online: {}; load average at start: {}\n", std::thread::hardware_concurrency(),
             load_average());
  fmt::print("\n{:>11} | {:<5} | {:>10} | {:>8} | {:>8} | {:>10} | {:>6}\n", "concurrency", "impl",
             "requests/s", "p50 us", "p99 us", "cpu us/req", "errors");
  fmt::print("{:-<12}+{:-<7}+{:-<12}+{:-<10}+{:-<10}+{:-<12}+{:-<7}\n", "", "", "", "", "", "", "");
  std::vector<std::string> ratios;
  for (size_t concurrency : o.concurrency) {
    // Repeats alternate the implementations, so slow drift of the machine
    // touches both alike.
    std::vector<Figures> ours, theirs;
    for (size_t r = 0; r < o.repeat; ++r) {
      if (want_wx) {
        ours.push_back(run_wxsim(concurrency, o.payload_bytes, next_window(o), data_dir));
        print_row(concurrency, "wxsim", ours.back());
      }
#ifdef WXSIM_BENCH_HAVE_GRPC
      if (want_grpc) {
        theirs.push_back(run_grpc(concurrency, o.payload_bytes, next_window(o)));
        print_row(concurrency, "gRPC", theirs.back());
      }
#endif
    }
    if (!ours.empty() && !theirs.empty()) {
      const Figures a = median_run(ours), b = median_run(theirs);
      if (b.requests_per_s > 0) {
        ratios.push_back(fmt::format(
            "concurrency {:>3}: requests/s {:.2f}x, p50 {:.2f}x, p99 {:.2f}x, cpu/req {:.2f}x",
            concurrency, a.requests_per_s / b.requests_per_s, a.p50_us / b.p50_us,
            a.p99_us / b.p99_us, a.cpu_us_per_request / b.cpu_us_per_request));
      }
    }
  }
  if (!ratios.empty()) {
    fmt::print(
        "\nratio wxsim / gRPC{} (requests/s: higher is better for wxsim; latency and cpu: lower "
        "is)\n",
        o.repeat > 1 ? fmt::format(", runs with the median requests/s of {}", o.repeat) : "");
    for (const std::string& r : ratios) fmt::print("  {}\n", r);
  }
  fmt::print("\nload average at end: {}\n", load_average());
  std::error_code ignored;
  std::filesystem::remove_all(data_dir, ignored);
  return 0;
}

}  // namespace
}  // namespace wx::bench

int main(int argc, char** argv) {
  wx::bench::Options o;
  CLI::App app{"Loopback RPC throughput and latency: wxsim's RPC beside gRPC C++"};
  app.add_option("--duration-s", o.duration_s, "Measured seconds per configuration")
      ->check(CLI::PositiveNumber);
  app.add_option("--warmup-s", o.warmup_s, "Warm-up seconds before each measurement")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--concurrency", o.concurrency, "Outstanding calls (one per caller), a list")
      ->delimiter(',');
  app.add_option("--payload-bytes", o.payload_bytes, "Echo payload size");
  app.add_option("--impl", o.impl, "Which side to run")
      ->check(CLI::IsMember({"both", "wxsim", "grpc"}));
  app.add_option("--repeat", o.repeat, "Runs per configuration; ratios use the median run")
      ->check(CLI::Range(size_t{1}, wx::bench::kRepeatMax));
  CLI11_PARSE(app, argc, argv);
  try {
    return wx::bench::run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rpc_tcp_bench: %s\n", e.what());
    return 1;
  }
}
