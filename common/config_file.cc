#include "common/config_file.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <sstream>
#include <utility>

#include "common/error.h"

namespace recsys {

ArgList::ArgList(std::vector<std::string> args) : args_(std::move(args)) {
  pointers_.reserve(args_.size() + 1);
  for (const auto& a : args_) pointers_.push_back(a.c_str());
  pointers_.push_back(nullptr);  // argv[argc] is null, as in main's
}

const std::vector<OptionInfo>& KnownOptions() {
  // Parsed once from the --help text. cxxopts prints each option on a line
  // of its own, indented two spaces ("  -h, --help" or "      --dim arg"),
  // while wrapped descriptions are indented past the option column, so a
  // "--name" inside a description is never taken for an option.
  static const std::vector<OptionInfo> options = [] {
    const char* help_argv[] = {"recsys_worker", "--help", nullptr};
    const ParsedArgs help = ParseArgs(2, help_argv);
    RECSYS_CHECK(help.exit_now, "--help did not return its text");
    static const std::regex kOptionLine(R"(^  (?:-[A-Za-z0-9], |    )--([A-Za-z0-9][A-Za-z0-9_-]*)( arg)?(?:\s.*)?$)");
    std::vector<OptionInfo> found;
    std::istringstream in(help.message);
    std::string line;
    std::smatch m;
    while (std::getline(in, line)) {
      if (std::regex_match(line, m, kOptionLine)) found.push_back({m[1].str(), m[2].matched});
    }
    RECSYS_CHECK(std::any_of(found.begin(), found.end(), [](const OptionInfo& o) { return o.name == "model"; }),
                 "cannot read the options from the --help text; has its layout changed?");
    return found;
  }();
  return options;
}

namespace {

const OptionInfo* FindOption(const std::string& name) {
  for (const auto& o : KnownOptions()) {
    if (o.name == name) return &o;
  }
  return nullptr;
}

std::string Trim(const std::string& s) {
  const auto begin = s.find_first_not_of(" \t\r");
  if (begin == std::string::npos) return "";
  const auto end = s.find_last_not_of(" \t\r");
  return s.substr(begin, end - begin + 1);
}

// A TOML number as the subset writes it: 64, -1, 0.001, 1e-3, 1_000.
bool IsNumber(const std::string& text) {
  static const std::regex kNumber(R"([+-]?[0-9][0-9_]*(\.[0-9][0-9_]*)?([eE][+-]?[0-9]+)?)");
  return std::regex_match(text, kNumber);
}

// One `key = value` line's value.
struct Value {
  enum Kind { kText, kBool } kind = kText;
  std::string text;  // strings unquoted, numbers as written (less '_'), arrays joined with ','
  bool flag = false;
};

// Reads the value of a line starting at `text[*pos]`; advances *pos past it.
class ValueReader {
 public:
  ValueReader(const std::string& file, int line, const std::string& text) : file_(file), line_(line), text_(text) {}

  Value Read() {
    Value v = ReadOne(/*in_array=*/false);
    SkipSpace();
    if (pos_ < text_.size() && text_[pos_] != '#') Fail(Concat("unexpected text after the value: '", text_.substr(pos_), "'"));
    return v;
  }

 private:
  [[noreturn]] void Fail(const std::string& message) const { ThrowInputError(file_, line_, message); }

  void SkipSpace() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t')) ++pos_;
  }

  Value ReadOne(bool in_array) {
    SkipSpace();
    if (pos_ >= text_.size() || text_[pos_] == '#') Fail("expected a value after '='");
    const char c = text_[pos_];
    if (c == '"' || c == '\'') {
      if (text_.compare(pos_, 3, std::string(3, c)) == 0) Fail("multi-line strings are not supported");
      return {Value::kText, ReadString(c), false};
    }
    if (c == '[') {
      if (in_array) Fail("nested arrays are not supported");
      return ReadArray();
    }
    // A bare word: true, false or a number.
    const std::size_t begin = pos_;
    while (pos_ < text_.size() && !std::isspace(static_cast<unsigned char>(text_[pos_])) && text_[pos_] != ',' &&
           text_[pos_] != ']' && text_[pos_] != '#') {
      ++pos_;
    }
    const std::string word = text_.substr(begin, pos_ - begin);
    if (word == "true" || word == "false") return {Value::kBool, word, word == "true"};
    if (IsNumber(word)) {
      std::string digits;
      for (char d : word) {
        if (d != '_') digits += d;
      }
      return {Value::kText, digits, false};
    }
    Fail(Concat("expected a quoted string, a number, true, false or an array, got '", word,
                "' (strings need quotes: model = \"fm\")"));
  }

  std::string ReadString(char quote) {
    std::string out;
    ++pos_;  // opening quote
    while (pos_ < text_.size() && text_[pos_] != quote) {
      char c = text_[pos_++];
      if (c == '\\' && quote == '"') {  // basic strings have escapes, literal ('...') ones do not
        if (pos_ >= text_.size()) break;
        const char e = text_[pos_++];
        switch (e) {
          case '"': c = '"'; break;
          case '\\': c = '\\'; break;
          case 't': c = '\t'; break;
          case 'n': c = '\n'; break;
          case 'r': c = '\r'; break;
          default: Fail(Concat("unsupported escape '\\", e, "' in a string"));
        }
      }
      out += c;
    }
    if (pos_ >= text_.size()) Fail(Concat("unterminated string (missing closing ", quote, ")"));
    ++pos_;  // closing quote
    return out;
  }

  Value ReadArray() {
    ++pos_;  // '['
    std::string joined;
    bool first = true;
    for (;;) {
      SkipSpace();
      if (pos_ < text_.size() && text_[pos_] == ']') break;  // also after a trailing comma, as TOML allows
      const Value item = ReadOne(/*in_array=*/true);
      if (item.kind == Value::kBool) Fail("arrays of true/false are not supported");
      joined += Concat(first ? "" : ",", item.text);
      first = false;
      SkipSpace();
      if (pos_ < text_.size() && text_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < text_.size() && text_[pos_] == ']') break;
      Fail("expected ',' or ']' in the array");
    }
    ++pos_;  // ']'
    return {Value::kText, joined, false};
  }

  const std::string& file_;
  const int line_;
  const std::string& text_;
  std::size_t pos_ = 0;
};

// One option from the file.
struct FileEntry {
  std::string name;  // canonical: '-' between words
  Value value;
  int line = 0;
};

std::vector<FileEntry> ReadConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) ThrowInputError(path, 0, "cannot open (--config)");
  std::vector<FileEntry> entries;
  std::map<std::string, int> seen;  // name -> line
  std::string raw;
  int line_no = 0;
  while (std::getline(in, raw)) {
    ++line_no;
    const std::string line = Trim(raw);
    if (line.empty() || line[0] == '#') continue;
    if (line[0] == '[') {
      ThrowInputError(path, line_no, "tables ([section]) are not supported: write every option at the top level");
    }
    const std::size_t eq = line.find('=');
    if (eq == std::string::npos) ThrowInputError(path, line_no, Concat("expected 'key = value', got '", line, "'"));
    const std::string key = Trim(line.substr(0, eq));
    if (key.empty()) ThrowInputError(path, line_no, "missing key before '='");
    for (char c : key) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') {
        ThrowInputError(path, line_no,
                        Concat("'", key, "' is not an option name (letters, digits, '-' and '_'; no quotes or dots)"));
      }
    }
    std::string name = key;
    std::replace(name.begin(), name.end(), '_', '-');
    if (name == "config") ThrowInputError(path, line_no, "a config file cannot name another one (config = ...)");
    const OptionInfo* option = FindOption(name);
    if (option == nullptr) ThrowInputError(path, line_no, Concat("unknown option '", key, "' (see --help)"));
    const auto [it, inserted] = seen.emplace(name, line_no);
    if (!inserted) ThrowInputError(path, line_no, Concat("'", key, "' is already set on line ", it->second));

    FileEntry entry{name, ValueReader(path, line_no, line.substr(eq + 1)).Read(), line_no};
    if (!option->takes_value && entry.value.kind != Value::kBool) {
      ThrowInputError(path, line_no, Concat("'", key, "' is a switch: expected true or false"));
    }
    if (option->takes_value && entry.value.kind == Value::kBool) {
      ThrowInputError(path, line_no, Concat("'", key, "' takes a value, not ", entry.value.text));
    }
    entries.push_back(std::move(entry));
  }
  return entries;
}

// The expansion and where each option given by the file came from.
struct Expansion {
  std::vector<std::string> args;
  std::string path;                 // the config file, "" if none
  std::map<std::string, int> line;  // option -> line, for options whose value comes from the file
};

// "--name=false" / "--name=true" of a switch: the value; otherwise nullopt.
std::optional<bool> SwitchValue(const std::string& arg, std::string* name) {
  if (arg.rfind("--", 0) != 0) return std::nullopt;
  const std::size_t eq = arg.find('=');
  if (eq == std::string::npos) return std::nullopt;
  *name = arg.substr(2, eq - 2);
  const OptionInfo* option = FindOption(*name);
  if (option == nullptr || option->takes_value) return std::nullopt;
  const std::string value = arg.substr(eq + 1);
  if (value == "true") return true;
  if (value == "false") return false;
  return std::nullopt;  // left for ParseArgs to refuse
}

Expansion Expand(int argc, const char* const* argv) {
  Expansion out;
  // The command line, less --config; and the options it sets.
  std::vector<std::string> command_line;
  std::map<std::string, bool> given;  // option name -> set on the command line
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--config" || arg.rfind("--config=", 0) == 0) {
      if (!out.path.empty()) throw InputError("--config: given twice; give one file (the command line overrides it)");
      if (arg == "--config") {
        if (i + 1 >= argc) throw InputError("--config: expected a file name");
        out.path = argv[++i];
      } else {
        out.path = arg.substr(9);
      }
      if (out.path.empty()) throw InputError("--config: expected a file name");
      continue;
    }
    std::string name;
    if (const auto on = SwitchValue(arg, &name)) {
      given[name] = true;
      if (*on) command_line.push_back("--" + name);
      continue;
    }
    command_line.push_back(arg);
    if (arg.rfind("--", 0) != 0) continue;
    const std::size_t eq = arg.find('=');
    name = arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    const OptionInfo* option = FindOption(name);
    if (option == nullptr) continue;  // ParseArgs names it
    given[name] = true;
    // "--dim 64": the value is the next argument, whatever it looks like.
    if (option->takes_value && eq == std::string::npos && i + 1 < argc) command_line.push_back(argv[++i]);
  }

  out.args.push_back(argc > 0 ? argv[0] : "recsys_worker");
  if (!out.path.empty()) {
    for (const FileEntry& e : ReadConfigFile(out.path)) {
      if (given.count(e.name)) continue;  // the command line wins
      if (e.value.kind == Value::kBool) {
        if (e.value.flag) out.args.push_back("--" + e.name);
      } else {
        out.args.push_back(Concat("--", e.name, "=", e.value.text));
      }
      out.line[e.name] = e.line;
    }
  }
  out.args.insert(out.args.end(), command_line.begin(), command_line.end());
  return out;
}

// The first known option a ParseArgs message names ("--dim must be ..."), or "".
std::string OptionNamedIn(const std::string& message) {
  static const std::regex kOption(R"(--([A-Za-z0-9][A-Za-z0-9_-]*))");
  for (auto it = std::sregex_iterator(message.begin(), message.end(), kOption); it != std::sregex_iterator(); ++it) {
    const std::string name = (*it)[1].str();
    if (FindOption(name) != nullptr) return name;
  }
  return "";
}

std::string TomlString(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      default: out += c;
    }
  }
  return out + "\"";
}

}  // namespace

ArgList ExpandConfigFile(int argc, const char* const* argv) { return ArgList(Expand(argc, argv).args); }

ParsedArgs ParseArgsWithConfigFile(int argc, const char* const* argv, bool save) {
  const Expansion expansion = Expand(argc, argv);
  const ArgList args(expansion.args);
  ParsedArgs parsed;
  try {
    parsed = ParseArgs(args.argc(), args.argv());
  } catch (const InputError& e) {
    // Point at the file's line when the option at fault came from it.
    const auto from_file = expansion.line.find(OptionNamedIn(e.what()));
    if (from_file == expansion.line.end()) throw;
    ThrowInputError(expansion.path, from_file->second, e.what());
  }
  if (save && !parsed.exit_now && !parsed.config.metrics_out.empty()) {
    const std::string path = parsed.config.metrics_out + ".config";
    std::ofstream out(path, std::ios::trunc);
    out << FormatConfigFile(args.args(), DescribeConfig(parsed.config));
    out.close();
    if (!out) ThrowInputError(path, 0, "cannot write the run's configuration (beside --metrics-out)");
  }
  return parsed;
}

std::string FormatConfigFile(const std::vector<std::string>& args, const std::string& summary) {
  std::string out = Concat("# recsys_worker configuration; rerun with: recsys_worker --config THIS_FILE [options]\n",
                           "# effective: ", summary, "\n");
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string& arg = args[i];
    const std::size_t eq = arg.find('=');
    const OptionInfo* option =
        arg.rfind("--", 0) == 0 ? FindOption(arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2))
                                : nullptr;
    if (option == nullptr) {
      out += Concat("# not an option, left out: ", arg, "\n");
      continue;
    }
    std::string line;
    if (!option->takes_value) {
      line = Concat(option->name, " = true");
    } else {
      std::string value;
      if (eq != std::string::npos) {
        value = arg.substr(eq + 1);
      } else if (i + 1 < args.size()) {
        value = args[++i];
      }
      // Underscores would be dropped from a bare number on reading back.
      const bool bare = IsNumber(value) && value.find('_') == std::string::npos;
      line = Concat(option->name, " = ", bare ? value : TomlString(value));
    }
    // A rerun from this file should not overwrite this run's metrics.
    out += Concat(option->name == "metrics-out" ? "# " : "", line, "\n");
  }
  return out;
}

}  // namespace recsys
