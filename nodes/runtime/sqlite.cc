#include "nodes/runtime/sqlite.h"

#include <sqlite3.h>

#include <utility>

namespace wx::sqlite {

namespace {
[[noreturn]] void fail(sqlite3* db, int rc, std::string_view what) {
  std::string msg(what);
  msg += ": ";
  msg += db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  throw SqliteError(rc, msg);
}
}  // namespace

Statement::Statement(sqlite3* db, sqlite3_stmt* stmt, std::shared_ptr<StatementCache> cache,
                     std::vector<sqlite3_stmt*>* home)
    : db_(db), stmt_(stmt), cache_(std::move(cache)), home_(home) {}

Statement::Statement(Statement&& o) noexcept
    : db_(std::exchange(o.db_, nullptr)),
      stmt_(std::exchange(o.stmt_, nullptr)),
      cache_(std::move(o.cache_)),
      home_(std::exchange(o.home_, nullptr)) {}

Statement& Statement::operator=(Statement&& o) noexcept {
  if (this != &o) {
    release();
    db_ = std::exchange(o.db_, nullptr);
    stmt_ = std::exchange(o.stmt_, nullptr);
    cache_ = std::move(o.cache_);
    home_ = std::exchange(o.home_, nullptr);
  }
  return *this;
}

Statement::~Statement() { release(); }

void Statement::release() {
  if (!stmt_) return;
  if (cache_ && cache_->db != nullptr && home_->size() < Database::kStatementCacheDepthMax) {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    home_->push_back(stmt_);
  } else {
    sqlite3_finalize(stmt_);
  }
  stmt_ = nullptr;
  cache_.reset();
  home_ = nullptr;
}

Statement& Statement::bind(int index, int64_t value) {
  int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK) fail(db_, rc, "sqlite bind");
  return *this;
}
Statement& Statement::bind(int index, double value) {
  int rc = sqlite3_bind_double(stmt_, index, value);
  if (rc != SQLITE_OK) fail(db_, rc, "sqlite bind");
  return *this;
}
Statement& Statement::bind(int index, std::string_view text) {
  int rc = sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  if (rc != SQLITE_OK) fail(db_, rc, "sqlite bind");
  return *this;
}
Statement& Statement::bind_blob(int index, std::string_view bytes) {
  int rc = sqlite3_bind_blob64(stmt_, index, bytes.data(), bytes.size(), SQLITE_TRANSIENT);
  if (rc != SQLITE_OK) fail(db_, rc, "sqlite bind");
  return *this;
}
Statement& Statement::bind_null(int index) {
  int rc = sqlite3_bind_null(stmt_, index);
  if (rc != SQLITE_OK) fail(db_, rc, "sqlite bind");
  return *this;
}

bool Statement::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  fail(db_, rc, "sqlite step");
}

void Statement::run() {
  while (step()) {
  }
  reset();
}

void Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

int64_t Statement::column_int64(int col) const { return sqlite3_column_int64(stmt_, col); }
double Statement::column_double(int col) const { return sqlite3_column_double(stmt_, col); }
std::string Statement::column_text(int col) const {
  const unsigned char* p = sqlite3_column_text(stmt_, col);
  int n = sqlite3_column_bytes(stmt_, col);
  return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n)) : std::string();
}
std::string Statement::column_blob(int col) const {
  const void* p = sqlite3_column_blob(stmt_, col);
  int n = sqlite3_column_bytes(stmt_, col);
  return p ? std::string(static_cast<const char*>(p), static_cast<size_t>(n)) : std::string();
}
bool Statement::column_is_null(int col) const {
  return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
}

Database Database::open(const std::string& uri) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(uri.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = "sqlite open '" + uri + "': " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close_v2(db);
    throw SqliteError(rc, msg);
  }
  sqlite3_extended_result_codes(db, 1);
  return Database(db);
}

Database::Database(sqlite3* db) : db_(db), cache_(std::make_shared<StatementCache>()) { cache_->db = db; }

Database::Database(Database&& o) noexcept
    : db_(std::exchange(o.db_, nullptr)), cache_(std::move(o.cache_)) {}
Database& Database::operator=(Database&& o) noexcept {
  if (this != &o) {
    close();
    db_ = std::exchange(o.db_, nullptr);
    cache_ = std::move(o.cache_);
  }
  return *this;
}
Database::~Database() { close(); }

void Database::close() {
  if (cache_) {
    // Idle statements are finalised now; lent ones when they are destroyed.
    for (auto& [sql, stmts] : cache_->free) {
      for (sqlite3_stmt* stmt : stmts) sqlite3_finalize(stmt);
      stmts.clear();
    }
    cache_->db = nullptr;
    cache_.reset();
  }
  if (db_) {
    // close_v2 defers the close until outstanding statements are finalised;
    // an open transaction is rolled back.
    sqlite3_close_v2(db_);
    db_ = nullptr;
  }
}

void Database::exec(std::string_view sql) {
  std::string_view one = sql;
  while (!one.empty() && (one.back() == ';' || one.back() == ' ' || one.back() == '\n')) one.remove_suffix(1);
  if (!one.empty() && one.find(';') == std::string_view::npos) {
    prepare(one).run();
    return;
  }
  std::string s(sql);
  char* err = nullptr;
  int rc = sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = "sqlite exec: ";
    msg += err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    throw SqliteError(rc, msg);
  }
}

Statement Database::prepare(std::string_view sql) {
  std::vector<sqlite3_stmt*>* home = nullptr;
  if (cache_) {
    auto it = cache_->free.find(sql);
    if (it == cache_->free.end() && cache_->free.size() < kStatementCacheTextsMax) {
      it = cache_->free.emplace(std::string(sql), std::vector<sqlite3_stmt*>{}).first;
    }
    if (it != cache_->free.end()) {
      home = &it->second;
      if (!home->empty()) {
        sqlite3_stmt* stmt = home->back();
        home->pop_back();
        return Statement(db_, stmt, cache_, home);
      }
    }
  }
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                              home ? SQLITE_PREPARE_PERSISTENT : 0, &stmt, nullptr);
  if (rc != SQLITE_OK) fail(db_, rc, "sqlite prepare '" + std::string(sql) + "'");
  if (home) return Statement(db_, stmt, cache_, home);
  return Statement(db_, stmt);
}

int64_t Database::changes() const { return sqlite3_changes64(db_); }
int64_t Database::last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }

}  // namespace wx::sqlite
