// Errors. Bad input throws InputError naming the file, the line and what was
// expected; main() catches it once, prints it with the rank and aborts the
// job. Bugs (broken invariants) hit RECSYS_CHECK, which throws InternalError.
// Outcomes a caller must act on come back as a [[nodiscard]] Status.
#ifndef RECSYS_COMMON_ERROR_H_
#define RECSYS_COMMON_ERROR_H_

#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace recsys {

// Bad input from the user: a file, an option, a checkpoint.
class InputError : public std::runtime_error {
 public:
  explicit InputError(const std::string& what) : std::runtime_error(what) {}
};

// A broken invariant inside the program.
class InternalError : public std::logic_error {
 public:
  explicit InternalError(const std::string& what) : std::logic_error(what) {}
};

// Throws InputError "FILE:LINE: MESSAGE" (line 0 leaves the line out).
[[noreturn]] void ThrowInputError(const std::string& file, std::int64_t line, const std::string& message);

// Builds a message from streamable parts: Concat("expected ", n, " columns").
template <typename... Args>
std::string Concat(Args&&... args) {
  std::ostringstream out;
  (out << ... << std::forward<Args>(args));
  return out.str();
}

// The result of an operation that can fail for reasons the caller handles.
class [[nodiscard]] Status {
 public:
  static Status Ok() { return Status(); }
  static Status Error(std::string message) { return Status(std::move(message)); }

  bool ok() const { return !failed_; }
  const std::string& message() const { return message_; }

 private:
  Status() = default;
  explicit Status(std::string message) : failed_(true), message_(std::move(message)) {}
  bool failed_ = false;
  std::string message_;
};

[[noreturn]] void CheckFailed(const char* file, int line, const char* condition, const std::string& detail);

}  // namespace recsys

// Asserts an invariant in every build type, with an optional detail made of
// streamable parts that are evaluated only on failure:
//   RECSYS_CHECK(n > 0);  RECSYS_CHECK(n > 0, "n=", n);
#define RECSYS_CHECK(...) RECSYS_CHECK_IMPL_(__VA_ARGS__, "")
#define RECSYS_CHECK_IMPL_(cond, ...)                                                          \
  do {                                                                                         \
    if (!(cond)) ::recsys::CheckFailed(__FILE__, __LINE__, #cond, ::recsys::Concat(__VA_ARGS__)); \
  } while (0)

#endif  // RECSYS_COMMON_ERROR_H_
