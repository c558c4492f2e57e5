// A thin RAII wrapper over the SQLite C API for node code.
//
// Node code never opens files: it gets its Database from `Runtime::disk()`.
// Every failing SQLite call throws SqliteError carrying the SQLite result code
// and message; nothing fails silently.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

struct sqlite3;
struct sqlite3_stmt;

namespace wx::sqlite {

class SqliteError : public std::runtime_error {
 public:
  SqliteError(int code, const std::string& what) : std::runtime_error(what), code_(code) {}
  int code() const { return code_; }

 private:
  int code_;
};

// Prepared statements kept by a Database for reuse (see Database::prepare).
struct StatementCache;

class Statement {
 public:
  Statement() = default;
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  // A statement lent by `cache`: destroying it resets it and gives it back
  // to `home` (the free list of its SQL text) instead of finalising it.
  Statement(sqlite3* db, sqlite3_stmt* stmt, std::shared_ptr<StatementCache> cache,
            std::vector<sqlite3_stmt*>* home);
  Statement(Statement&& o) noexcept;
  Statement& operator=(Statement&& o) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  // Parameters are 1-based, as in SQLite.
  Statement& bind(int index, int64_t value);
  Statement& bind(int index, double value);
  Statement& bind(int index, std::string_view text);
  Statement& bind_blob(int index, std::string_view bytes);
  Statement& bind_null(int index);

  // Advances; true while a row is available. A statement left mid-result
  // (stepped but neither run to the end nor reset) keeps SQLite's implicit
  // read transaction open, and writes made meanwhile outside BEGIN…COMMIT
  // are then not committed: reset() or destroy statements you stop early.
  bool step();
  // Runs a statement that returns no rows (INSERT/UPDATE/...).
  void run();
  // Ready to run again with new bindings.
  void reset();

  // Columns are 0-based, as in SQLite.
  int64_t column_int64(int col) const;
  double column_double(int col) const;
  std::string column_text(int col) const;
  std::string column_blob(int col) const;
  bool column_is_null(int col) const;

 private:
  void release();

  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
  std::shared_ptr<StatementCache> cache_;
  std::vector<sqlite3_stmt*>* home_ = nullptr;
};

// The statements of one connection, by SQL text. Shared with the
// statements it lends so that one outliving its Database is finalised
// (db == nullptr after close) rather than returned.
struct StatementCache {
  sqlite3* db = nullptr;
  std::map<std::string, std::vector<sqlite3_stmt*>, std::less<>> free;
};

class Database {
 public:
  Database() = default;
  // Takes ownership of an open connection.
  explicit Database(sqlite3* db);
  // Opens `uri` with SQLITE_OPEN_URI | READWRITE | CREATE. Throws on failure.
  static Database open(const std::string& uri);
  Database(Database&& o) noexcept;
  Database& operator=(Database&& o) noexcept;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  // Closes the connection; an open transaction is rolled back, as after a crash.
  ~Database();

  bool is_open() const { return db_ != nullptr; }
  void close();
  // Runs SQL without results. One statement (no ';' but a trailing one) is
  // run through the statement cache; a script goes to sqlite3_exec.
  void exec(std::string_view sql);
  // A prepared statement for `sql`. Statements are cached by SQL text and
  // reused (reset, bindings cleared) after the Statement is destroyed, so
  // the same SQL is parsed once per connection: callers pass constant SQL
  // (values go through bind), or the cache stops growing at
  // kStatementCacheTextsMax texts and further ones are prepared afresh.
  Statement prepare(std::string_view sql);
  static constexpr size_t kStatementCacheTextsMax = 256;
  // Idle statements kept per SQL text (more in use at once are finalised
  // when returned).
  static constexpr size_t kStatementCacheDepthMax = 4;
  int64_t changes() const;
  int64_t last_insert_rowid() const;
  sqlite3* raw() const { return db_; }

 private:
  sqlite3* db_ = nullptr;
  std::shared_ptr<StatementCache> cache_;
};

}  // namespace wx::sqlite
