// The readers of every on-disk format (ml-100k, ml-1m, ncf, csv), the NCF
// candidates file and ReadDataset, which dispatches on DataOptions::format.
//
// Two rules shape this file:
//  - Every line of every file is parsed and checked, also the lines of users
//    this worker does not keep. A bad file then fails on every rank with the
//    same message, instead of on whichever rank happens to own the bad line,
//    and `items` (which must agree across workers) sees every line.
//  - Files are read in large chunks and split with string_view and
//    std::from_chars: ml-20m has 20M lines, and iostream >> per field would
//    cost more than the rest of start-up together.
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "common/data/dataset.h"
#include "common/data/synthetic.h"
#include "common/error.h"
#include "common/hash.h"
#include "common/keys.h"

namespace recsys {
namespace {

using KeepUser = std::function<bool(std::uint64_t)>;

// ---------------------------------------------------------------------------
// Reading lines.

// Reads a text file line by line through a large buffer. Lines are returned
// without their "\n" or "\r\n"; the returned view is valid until the next
// call to Next(). Not copyable: owns the FILE.
class LineReader {
 public:
  // Throws InputError "<path>: cannot open: <reason>" if the file cannot be
  // opened for reading (missing, no permission, a directory).
  explicit LineReader(std::string path) : path_(std::move(path)) {
    file_ = std::fopen(path_.c_str(), "rb");
    if (file_ == nullptr) ThrowInputError(path_, 0, Concat("cannot open: ", std::strerror(errno)));
    // On Linux fopen() accepts a directory and only read() fails, with a
    // less obvious message; say it up front.
    struct stat st;
    if (::fstat(::fileno(file_), &st) == 0 && S_ISDIR(st.st_mode)) {
      std::fclose(file_);
      ThrowInputError(path_, 0, "cannot open: is a directory, expected a file");
    }
    buffer_.resize(kChunkBytes);
  }
  ~LineReader() { std::fclose(file_); }
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // Sets *line to the next line and returns true, or returns false at the
  // end of the file. Throws InputError on a read error.
  bool Next(std::string_view* line) {
    for (;;) {
      const char* start = buffer_.data() + begin_;
      const std::size_t available = end_ - begin_;
      const void* newline = available == 0 ? nullptr : std::memchr(start, '\n', available);
      if (newline != nullptr) {
        const std::size_t length = static_cast<std::size_t>(static_cast<const char*>(newline) - start);
        begin_ += length + 1;
        return Emit(start, length, line);
      }
      if (eof_) {
        if (available == 0) return false;
        begin_ = end_;  // the last line has no newline
        return Emit(start, available, line);
      }
      // Move the partial line to the front and read more behind it; a line
      // longer than the buffer doubles it.
      std::memmove(buffer_.data(), start, available);
      begin_ = 0;
      end_ = available;
      if (end_ == buffer_.size()) buffer_.resize(buffer_.size() * 2);
      const std::size_t got = std::fread(buffer_.data() + end_, 1, buffer_.size() - end_, file_);
      end_ += got;
      if (got == 0) {
        if (std::ferror(file_)) ThrowInputError(path_, line_number_ + 1, Concat("cannot read: ", std::strerror(errno)));
        eof_ = true;
      }
    }
  }

  // Like Next(), but skips lines that are empty or only blanks (a trailing
  // empty line is common and harmless), and counts the lines returned.
  bool NextDataLine(std::string_view* line) {
    while (Next(line)) {
      if (line->find_first_not_of(" \t") != std::string_view::npos) {
        ++data_lines_;
        return true;
      }
    }
    return false;
  }

  // The 1-based number of the line last returned.
  std::int64_t line_number() const { return line_number_; }
  std::int64_t data_lines() const { return data_lines_; }
  const std::string& path() const { return path_; }

  // Throws InputError "<path>:<line>: <message>" for the line last returned.
  [[noreturn]] void Fail(const std::string& message) const { ThrowInputError(path_, line_number_, message); }

  // Throws InputError "<path>: is empty" unless a data line was read.
  void CheckNotEmpty(const char* expected) const {
    if (data_lines_ == 0) ThrowInputError(path_, 0, Concat("is empty; expected ", expected));
  }

 private:
  static constexpr std::size_t kChunkBytes = std::size_t{1} << 20;

  bool Emit(const char* start, std::size_t length, std::string_view* line) {
    if (length > 0 && start[length - 1] == '\r') --length;
    *line = std::string_view(start, length);
    ++line_number_;
    return true;
  }

  const std::string path_;
  std::FILE* file_ = nullptr;
  std::vector<char> buffer_;
  std::size_t begin_ = 0;  // unread bytes are buffer_[begin_, end_)
  std::size_t end_ = 0;
  bool eof_ = false;
  std::int64_t line_number_ = 0;
  std::int64_t data_lines_ = 0;
};

bool FileExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

std::string JoinPath(const std::string& dir, const char* name) {
  if (dir.empty() || dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

// ---------------------------------------------------------------------------
// Splitting and parsing fields.

// Splits `line` at every occurrence of `separator` into *fields (cleared
// first) and returns their number. "a||b" has an empty middle field.
std::size_t SplitFields(std::string_view line, std::string_view separator, std::vector<std::string_view>* fields) {
  fields->clear();
  std::size_t begin = 0;
  for (;;) {
    const std::size_t end = line.find(separator, begin);
    if (end == std::string_view::npos) {
      fields->push_back(line.substr(begin));
      return fields->size();
    }
    fields->push_back(line.substr(begin, end - begin));
    begin = end + separator.size();
  }
}

std::string_view Trim(std::string_view s) {
  const std::size_t first = s.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  const std::size_t last = s.find_last_not_of(" \t");
  return s.substr(first, last - first + 1);
}

// Quotes a field for an error message, shortened so a binary file does not
// flood the terminal.
std::string Quote(std::string_view s) {
  constexpr std::size_t kMax = 40;
  if (s.size() > kMax) return Concat("'", s.substr(0, kMax), "...'");
  return Concat("'", s, "'");
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), IsDigit);
}

// Parses a non-negative integer id; `what` names it in errors ("user id").
std::uint64_t ParseId(const LineReader& reader, std::string_view field, const char* what) {
  field = Trim(field);
  if (field.empty()) reader.Fail(Concat("expected a non-negative integer ", what, ", got an empty field"));
  if (field.size() > 1 && field[0] == '-' && AllDigits(field.substr(1))) {
    reader.Fail(Concat(what, " ", Quote(field), " is negative; expected a non-negative integer"));
  }
  std::uint64_t value = 0;
  const char* end = field.data() + field.size();
  const auto [ptr, ec] = std::from_chars(field.data(), end, value);
  if (ec == std::errc::result_out_of_range) {
    reader.Fail(Concat(what, " ", Quote(field), " does not fit in 64 bits"));
  }
  if (ec != std::errc() || ptr != end) {
    reader.Fail(Concat("expected a non-negative integer ", what, ", got ", Quote(field)));
  }
  return value;
}

// Parses a signed integer timestamp (seconds or any other unit; only the
// order matters).
std::int64_t ParseTimestamp(const LineReader& reader, std::string_view field) {
  field = Trim(field);
  if (field.empty()) reader.Fail("expected an integer timestamp, got an empty field");
  std::int64_t value = 0;
  const char* end = field.data() + field.size();
  const auto [ptr, ec] = std::from_chars(field.data(), end, value);
  if (ec == std::errc::result_out_of_range) reader.Fail(Concat("timestamp ", Quote(field), " does not fit in 64 bits"));
  if (ec != std::errc() || ptr != end) {
    reader.Fail(Concat("expected an integer timestamp, got ", Quote(field)));
  }
  return value;
}

// Ratings are not used (all interactions are implicit positives) but a
// non-number there almost always means a wrong file or wrong separator.
void CheckRating(const LineReader& reader, std::string_view field) {
  field = Trim(field);
  if (field.empty()) reader.Fail("expected a numeric rating, got an empty field");
  double value = 0;
  const char* end = field.data() + field.size();
  const auto [ptr, ec] = std::from_chars(field.data(), end, value);
  if (ec != std::errc() || ptr != end) {
    reader.Fail(Concat("expected a numeric rating, got ", Quote(field)));
  }
}

// A stable 64-bit hash of a string: FNV-1a over the bytes, then Mix64 to
// spread FNV's weak high bits. Stable across runs, ranks and platforms, which
// std::hash does not promise.
std::uint64_t HashString(std::string_view s) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (const char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return Mix64(h);
}

// ---------------------------------------------------------------------------
// Collecting the item universe.

// The set of item ids seen. Small ids (every MovieLens and NCF file) go to a
// bitmap, which is much faster than a hash set for 20M insertions of 27k
// distinct ids; large ids (hashed CSV strings) to a hash set.
class ItemSet {
 public:
  void Add(std::uint64_t item) {
    if (item < kDenseLimit) {
      if (item >= dense_.size()) dense_.resize(std::max<std::size_t>(item + 1, 2 * dense_.size()));
      dense_[item] = true;
    } else {
      sparse_.insert(item);
    }
  }

  // Merges the items into *items, which ends sorted and unique.
  void MergeInto(std::vector<std::uint64_t>* items) const {
    for (std::size_t i = 0; i < dense_.size(); ++i) {
      if (dense_[i]) items->push_back(i);
    }
    items->insert(items->end(), sparse_.begin(), sparse_.end());
    std::sort(items->begin(), items->end());
    items->erase(std::unique(items->begin(), items->end()), items->end());
  }

 private:
  static constexpr std::uint64_t kDenseLimit = std::uint64_t{1} << 24;
  std::vector<bool> dense_;
  std::unordered_set<std::uint64_t> sparse_;
};

// ---------------------------------------------------------------------------
// Rating files: one interaction per line.

struct RatingFormat {
  std::string_view separator;
  const char* expected;  // what a line should look like, for errors
};

constexpr RatingFormat kTabRatings{"\t", "4 tab-separated columns (user item rating timestamp)"};
constexpr RatingFormat kColonRatings{"::", "4 '::'-separated columns (user::item::rating::timestamp)"};

// Calls row(user, item, ts, reader) for every line of a 4-column rating file.
template <typename Row>
void ForEachRating(const std::string& path, const RatingFormat& format, Row row) {
  LineReader reader(path);
  std::vector<std::string_view> fields;
  std::string_view line;
  while (reader.NextDataLine(&line)) {
    const std::size_t n = SplitFields(line, format.separator, &fields);
    if (n != 4) reader.Fail(Concat("expected ", format.expected, ", got ", n));
    const std::uint64_t user = ParseId(reader, fields[0], "user id");
    const std::uint64_t item = ParseId(reader, fields[1], "item id");
    CheckRating(reader, fields[2]);
    const std::int64_t ts = ParseTimestamp(reader, fields[3]);
    row(user, item, ts, reader);
  }
  reader.CheckNotEmpty(format.expected);
}

void ReadRatings(const std::string& path, const RatingFormat& format, const KeepUser& keep_user, Dataset* dataset,
                 ItemSet* items) {
  ForEachRating(path, format, [&](std::uint64_t user, std::uint64_t item, std::int64_t ts, const LineReader&) {
    items->Add(item);
    if (keep_user(user)) dataset->interactions.push_back({user, item, ts});
  });
}

// ---------------------------------------------------------------------------
// Side features shared by the MovieLens readers.

// The MovieLens genres in ml-100k's u.genre order (index = genre value), so
// ml-100k flags and ml-1m names map to the same keys.
constexpr const char* kGenres[] = {"unknown", "Action",    "Adventure", "Animation", "Children's",
                                   "Comedy",  "Crime",     "Documentary", "Drama",   "Fantasy",
                                   "Film-Noir", "Horror",  "Musical",   "Mystery",   "Romance",
                                   "Sci-Fi",  "Thriller",  "War",       "Western"};
constexpr int kNumGenres = static_cast<int>(sizeof(kGenres) / sizeof(kGenres[0]));

// ml-100k ages -> the seven ml-1m age buckets, 0..6.
std::uint64_t AgeBucket(std::uint64_t age) {
  if (age < 18) return 0;
  if (age < 25) return 1;
  if (age < 35) return 2;
  if (age < 45) return 3;
  if (age < 50) return 4;
  if (age < 56) return 5;
  return 6;
}

std::uint64_t ParseGender(const LineReader& reader, std::string_view field) {
  field = Trim(field);
  if (field == "M") return 0;
  if (field == "F") return 1;
  reader.Fail(Concat("expected gender M or F, got ", Quote(field)));
}

std::vector<Feature> UserFeatures(std::uint64_t age_bucket, std::uint64_t gender, std::uint64_t occupation) {
  return {{MakeKey(kFieldAge, age_bucket), 1.0f},
          {MakeKey(kFieldGender, gender), 1.0f},
          {MakeKey(kFieldOccupation, occupation), 1.0f}};
}

// Multi-hot genres: each of an item's n genres has value 1/n, so the sum of
// an item's genre embeddings is their mean.
std::vector<Feature> GenreFeatures(const std::vector<std::uint64_t>& genres) {
  std::vector<Feature> features;
  features.reserve(genres.size());
  for (const std::uint64_t g : genres) {
    features.push_back({MakeKey(kFieldGenre, g), 1.0f / static_cast<Real>(genres.size())});
  }
  return features;
}

void SetUserSlots(Dataset* dataset) { dataset->user_slot_fields = {kFieldAge, kFieldGender, kFieldOccupation}; }

void SetItemSlots(std::size_t max_genres, Dataset* dataset) {
  dataset->item_slot_fields.assign(max_genres, kFieldGenre);
}

// Rejects a second definition of the same id in a features file.
void CheckFirstDefinition(const LineReader& reader, std::unordered_map<std::uint64_t, std::int64_t>* defined,
                          std::uint64_t id, const char* what) {
  const auto [it, inserted] = defined->emplace(id, reader.line_number());
  if (!inserted) reader.Fail(Concat(what, " ", id, " is defined twice (first on line ", it->second, ")"));
}

// ---------------------------------------------------------------------------
// ml-100k

// Occupation values. The index of an occupation in order of first appearance
// would differ between workers that read different subsets, so use the line
// of the name in u.occupation, or a stable hash of the name without it.
class OccupationMap {
 public:
  explicit OccupationMap(const std::string& dir) : path_(JoinPath(dir, "u.occupation")) {
    if (!FileExists(path_)) return;
    LineReader reader(path_);
    std::string_view line;
    while (reader.NextDataLine(&line)) {
      index_.emplace(std::string(Trim(line)), static_cast<std::uint64_t>(index_.size()));
    }
    reader.CheckNotEmpty("one occupation name per line");
  }

  std::uint64_t ValueOf(const LineReader& reader, std::string_view name) const {
    name = Trim(name);
    if (index_.empty()) return HashString(name);
    const auto it = index_.find(std::string(name));
    if (it == index_.end()) reader.Fail(Concat("unknown occupation ", Quote(name), " (not listed in ", path_, ")"));
    return it->second;
  }

 private:
  const std::string path_;
  std::unordered_map<std::string, std::uint64_t> index_;
};

void ReadMl100kUsers(const std::string& dir, const KeepUser& keep_user, Dataset* dataset) {
  const OccupationMap occupations(dir);
  LineReader reader(JoinPath(dir, "u.user"));
  constexpr const char* kExpected = "5 '|'-separated fields (id|age|gender|occupation|zip)";
  std::unordered_map<std::uint64_t, std::int64_t> defined;
  std::vector<std::string_view> fields;
  std::string_view line;
  while (reader.NextDataLine(&line)) {
    const std::size_t n = SplitFields(line, "|", &fields);
    if (n != 5) reader.Fail(Concat("expected ", kExpected, ", got ", n));
    const std::uint64_t user = ParseId(reader, fields[0], "user id");
    CheckFirstDefinition(reader, &defined, user, "user");
    const std::uint64_t age = ParseId(reader, fields[1], "age");
    const std::uint64_t gender = ParseGender(reader, fields[2]);
    const std::uint64_t occupation = occupations.ValueOf(reader, fields[3]);
    if (keep_user(user)) dataset->user_features[user] = UserFeatures(AgeBucket(age), gender, occupation);
  }
  reader.CheckNotEmpty(kExpected);
  SetUserSlots(dataset);
}

void ReadMl100kItems(const std::string& dir, Dataset* dataset, ItemSet* items) {
  LineReader reader(JoinPath(dir, "u.item"));
  constexpr std::size_t kFlags = kNumGenres;
  constexpr const char* kExpected =
      "at least 24 '|'-separated fields (id|title|release date|video release date|url|19 genre flags)";
  std::unordered_map<std::uint64_t, std::int64_t> defined;
  std::vector<std::string_view> fields;
  std::vector<std::uint64_t> genres;
  std::size_t max_genres = 0;
  std::string_view line;
  while (reader.NextDataLine(&line)) {
    const std::size_t n = SplitFields(line, "|", &fields);
    if (n < 5 + kFlags) reader.Fail(Concat("expected ", kExpected, ", got ", n));
    const std::uint64_t item = ParseId(reader, fields[0], "item id");
    CheckFirstDefinition(reader, &defined, item, "item");
    items->Add(item);
    // The flags are the last 19 fields, so a title containing '|' still parses.
    genres.clear();
    for (std::size_t g = 0; g < kFlags; ++g) {
      const std::string_view flag = Trim(fields[n - kFlags + g]);
      if (flag == "1") {
        genres.push_back(g);
      } else if (flag != "0") {
        reader.Fail(Concat("expected genre flag 0 or 1 for ", kGenres[g], " (field ", n - kFlags + g + 1, "), got ",
                           Quote(flag)));
      }
    }
    max_genres = std::max(max_genres, genres.size());
    if (!genres.empty()) dataset->item_features[item] = GenreFeatures(genres);
  }
  reader.CheckNotEmpty(kExpected);
  SetItemSlots(max_genres, dataset);
}

void ReadMl100k(const DataOptions& options, const KeepUser& keep_user, Dataset* dataset, ItemSet* items) {
  ReadRatings(JoinPath(options.path, "u.data"), kTabRatings, keep_user, dataset, items);
  if (!options.side_features) return;
  if (FileExists(JoinPath(options.path, "u.user"))) ReadMl100kUsers(options.path, keep_user, dataset);
  if (FileExists(JoinPath(options.path, "u.item"))) ReadMl100kItems(options.path, dataset, items);
}

// ---------------------------------------------------------------------------
// ml-1m

void ReadMl1mUsers(const std::string& dir, const KeepUser& keep_user, Dataset* dataset) {
  LineReader reader(JoinPath(dir, "users.dat"));
  constexpr const char* kExpected = "5 '::'-separated fields (id::gender::age::occupation::zip)";
  std::unordered_map<std::uint64_t, std::int64_t> defined;
  std::vector<std::string_view> fields;
  std::string_view line;
  while (reader.NextDataLine(&line)) {
    const std::size_t n = SplitFields(line, "::", &fields);
    if (n != 5) reader.Fail(Concat("expected ", kExpected, ", got ", n));
    const std::uint64_t user = ParseId(reader, fields[0], "user id");
    CheckFirstDefinition(reader, &defined, user, "user");
    const std::uint64_t gender = ParseGender(reader, fields[1]);
    // ml-1m ages are already bucketed: the code is the bucket's lower bound.
    const std::uint64_t age_code = ParseId(reader, fields[2], "age code");
    constexpr std::uint64_t kAgeCodes[] = {1, 18, 25, 35, 45, 50, 56};
    const auto code = std::find(std::begin(kAgeCodes), std::end(kAgeCodes), age_code);
    if (code == std::end(kAgeCodes)) {
      reader.Fail(Concat("expected an age code (1, 18, 25, 35, 45, 50 or 56), got ", age_code));
    }
    const std::uint64_t occupation = ParseId(reader, fields[3], "occupation code");
    if (keep_user(user)) {
      dataset->user_features[user] =
          UserFeatures(static_cast<std::uint64_t>(code - std::begin(kAgeCodes)), gender, occupation);
    }
  }
  reader.CheckNotEmpty(kExpected);
  SetUserSlots(dataset);
}

void ReadMl1mItems(const std::string& dir, Dataset* dataset, ItemSet* items) {
  LineReader reader(JoinPath(dir, "movies.dat"));
  constexpr const char* kExpected = "'::'-separated fields id::title::Genre1|Genre2|...";
  std::unordered_map<std::uint64_t, std::int64_t> defined;
  std::vector<std::string_view> fields;
  std::vector<std::string_view> names;
  std::vector<std::uint64_t> genres;
  std::size_t max_genres = 0;
  std::string_view line;
  while (reader.NextDataLine(&line)) {
    // The id is the first field and the genres the last, so a title with
    // "::" in it still parses.
    const std::size_t n = SplitFields(line, "::", &fields);
    if (n < 3) reader.Fail(Concat("expected ", kExpected, ", got ", n, " field", n == 1 ? "" : "s"));
    const std::uint64_t item = ParseId(reader, fields[0], "item id");
    CheckFirstDefinition(reader, &defined, item, "item");
    items->Add(item);
    genres.clear();
    const std::string_view genre_field = Trim(fields[n - 1]);
    if (!genre_field.empty() && genre_field != "(no genres listed)") {
      SplitFields(genre_field, "|", &names);
      for (const std::string_view raw : names) {
        const std::string_view name = Trim(raw);
        const auto genre = std::find(std::begin(kGenres) + 1, std::end(kGenres), name);
        if (genre == std::end(kGenres)) {
          reader.Fail(Concat("unknown genre ", Quote(name),
                             "; expected one of the 18 ml-1m genres (Action, Adventure, Animation, Children's, Comedy, "
                             "Crime, Documentary, Drama, Fantasy, Film-Noir, Horror, Musical, Mystery, Romance, "
                             "Sci-Fi, Thriller, War, Western)"));
        }
        const auto g = static_cast<std::uint64_t>(genre - std::begin(kGenres));
        if (std::find(genres.begin(), genres.end(), g) == genres.end()) genres.push_back(g);
      }
    }
    // Ordered by genre so the slot layout does not depend on name order.
    std::sort(genres.begin(), genres.end());
    max_genres = std::max(max_genres, genres.size());
    if (!genres.empty()) dataset->item_features[item] = GenreFeatures(genres);
  }
  reader.CheckNotEmpty(kExpected);
  SetItemSlots(max_genres, dataset);
}

void ReadMl1m(const DataOptions& options, const KeepUser& keep_user, Dataset* dataset, ItemSet* items) {
  ReadRatings(JoinPath(options.path, "ratings.dat"), kColonRatings, keep_user, dataset, items);
  if (!options.side_features) return;
  if (FileExists(JoinPath(options.path, "users.dat"))) ReadMl1mUsers(options.path, keep_user, dataset);
  if (FileExists(JoinPath(options.path, "movies.dat"))) ReadMl1mItems(options.path, dataset, items);
}

// ---------------------------------------------------------------------------
// Candidates files (NCF .test.negative).

// A test item given by a file other than the candidates file (NCF's
// .test.rating), which the candidates file must agree with.
struct GivenTest {
  std::uint64_t item = 0;
  std::int64_t line = 0;
};

struct CandidateChecks {
  // If set: every line's (user,item) must match, and every user here must
  // have a line.
  const std::unordered_map<std::uint64_t, GivenTest>* expected = nullptr;
  std::string expected_path;
  // If set: every kept user of the file must have interactions here (only
  // kept users' interactions are known).
  const std::unordered_set<std::uint64_t>* users_with_data = nullptr;
  std::string data_path;
  // The data are a csv file: ids that are not integers are its string ids.
  bool string_ids = false;
};

// An id of a candidates file: as ParseId, or with `string_ids` as the csv
// reader takes ids (an integer, or the CsvStringId of any other text).
std::uint64_t ParseCandidateId(const LineReader& reader, std::string_view field, const char* what, bool string_ids) {
  if (string_ids) {
    field = Trim(field);
    if (field.size() >= 2 && field.front() == '"' && field.back() == '"') field = Trim(field.substr(1, field.size() - 2));
    if (!field.empty() && !AllDigits(field)) return CsvStringId(field);
  }
  return ParseId(reader, field, what);
}

void ReadCandidates(const std::string& path, const KeepUser& keep_user, const CandidateChecks& checks,
                    Dataset* dataset, ItemSet* items) {
  LineReader reader(path);
  constexpr const char* kExpected = "'(user,item)' followed by tab-separated candidate item ids";
  std::unordered_map<std::uint64_t, std::int64_t> user_lines;  // every user, for the duplicate check
  std::vector<std::string_view> fields;
  std::vector<std::uint64_t> candidates;
  std::size_t expected_count = 0;
  std::int64_t first_line = 0;
  std::string_view line;
  while (reader.NextDataLine(&line)) {
    // Trailing tabs (some generators write them) are not empty candidates.
    const std::size_t n = SplitFields(Trim(line), "\t", &fields);
    const std::string_view head = Trim(fields[0]);
    const std::size_t comma = head.find(',');
    if (head.size() < 5 || head.front() != '(' || head.back() != ')' || comma == std::string_view::npos) {
      reader.Fail(Concat("expected ", kExpected, "; the line starts with ", Quote(head)));
    }
    const std::uint64_t user = ParseCandidateId(reader, head.substr(1, comma - 1), "user id", checks.string_ids);
    const std::uint64_t item =
        ParseCandidateId(reader, head.substr(comma + 1, head.size() - comma - 2), "test item id", checks.string_ids);
    candidates.clear();
    for (std::size_t i = 1; i < n; ++i) {
      candidates.push_back(ParseCandidateId(reader, fields[i], "candidate item id", checks.string_ids));
    }

    if (first_line == 0) {
      if (candidates.empty()) reader.Fail(Concat("expected ", kExpected, ", got no candidates"));
      expected_count = candidates.size();
      first_line = reader.line_number();
    } else if (candidates.size() != expected_count) {
      reader.Fail(Concat("expected ", expected_count, " candidate items (as on line ", first_line, "), got ",
                         candidates.size()));
    }
    const auto [seen, inserted] = user_lines.emplace(user, reader.line_number());
    if (!inserted) reader.Fail(Concat("user ", user, " already has a line (line ", seen->second, ")"));
    if (checks.expected != nullptr) {
      const auto given = checks.expected->find(user);
      if (given == checks.expected->end()) {
        reader.Fail(Concat("user ", user, " has no test item in ", checks.expected_path));
      }
      if (given->second.item != item) {
        reader.Fail(Concat("test item of user ", user, " is ", item, " here but ", given->second.item, " in ",
                           checks.expected_path, ":", given->second.line));
      }
    }

    items->Add(item);
    for (const std::uint64_t c : candidates) items->Add(c);
    if (!keep_user(user)) continue;
    if (checks.users_with_data != nullptr && checks.users_with_data->count(user) == 0) {
      reader.Fail(Concat("user ", user, " has no interactions in ", checks.data_path,
                         "; a test user needs a training history"));
    }
    dataset->test_item[user] = item;
    dataset->test_candidates[user] = candidates;
  }
  reader.CheckNotEmpty(kExpected);
  if (checks.expected != nullptr) {
    // Report the earliest line so the message is the same on every rank.
    const std::pair<const std::uint64_t, GivenTest>* missing = nullptr;
    for (const auto& entry : *checks.expected) {
      if (user_lines.count(entry.first) == 0 && (missing == nullptr || entry.second.line < missing->second.line)) {
        missing = &entry;
      }
    }
    if (missing != nullptr) {
      ThrowInputError(checks.expected_path, missing->second.line,
                      Concat("user ", missing->first, " has a test item but no line in ", path));
    }
  }
  dataset->has_given_test = true;
}

std::unordered_set<std::uint64_t> UsersOf(const std::vector<Interaction>& interactions) {
  std::unordered_set<std::uint64_t> users;
  for (const Interaction& x : interactions) users.insert(x.user);
  return users;
}

// ---------------------------------------------------------------------------
// ncf

void ReadNcf(const DataOptions& options, const KeepUser& keep_user, Dataset* dataset, ItemSet* items) {
  const std::string train_path = options.path + ".train.rating";
  const std::string test_path = options.path + ".test.rating";
  ReadRatings(train_path, kTabRatings, keep_user, dataset, items);
  const std::unordered_set<std::uint64_t> users_with_data = UsersOf(dataset->interactions);

  // Every user's test row is kept for the consistency checks; the kept ones
  // are appended to the interactions, so that the test item is among the
  // user's positives and the split removes it from training.
  std::unordered_map<std::uint64_t, GivenTest> test_rows;
  std::vector<Interaction> kept_test_rows;
  ForEachRating(test_path, kTabRatings, [&](std::uint64_t user, std::uint64_t item, std::int64_t ts,
                                            const LineReader& reader) {
    const auto [it, inserted] = test_rows.emplace(user, GivenTest{item, reader.line_number()});
    if (!inserted) {
      reader.Fail(Concat("user ", user, " already has a test item (line ", it->second.line,
                         "); expected one test row per user"));
    }
    items->Add(item);
    if (!keep_user(user)) return;
    if (users_with_data.count(user) == 0) {
      reader.Fail(Concat("user ", user, " has a test item but no interactions in ", train_path));
    }
    kept_test_rows.push_back({user, item, ts});
  });
  dataset->interactions.insert(dataset->interactions.end(), kept_test_rows.begin(), kept_test_rows.end());

  // --eval-candidates replaces the prefix's own negatives file.
  CandidateChecks checks;
  checks.expected = &test_rows;
  checks.expected_path = test_path;
  const std::string negatives =
      options.eval_candidates.empty() ? options.path + ".test.negative" : options.eval_candidates;
  ReadCandidates(negatives, keep_user, checks, dataset, items);
}

// ---------------------------------------------------------------------------
// csv

// An identity fingerprint of a string id, independent of CsvStringId: two
// strings that share an id almost surely differ here.
std::uint64_t StringFingerprint(std::string_view s) {
  std::uint64_t h = 0x84222325cbf29ce4ULL;
  for (const char c : s) {
    h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
    h ^= h >> 29;
  }
  return Mix64(h ^ (s.size() * 0x9e3779b97f4a7c15ULL));
}

// A fingerprint of an integer id, never equal to a string's (almost surely).
std::uint64_t IntegerFingerprint(std::uint64_t id) { return HashCombine(0x1d1d1d1dULL, id); }

// Finds distinct csv ids that got the same 64-bit id: two strings with the
// same hash, or a string and the integer equal to its hash. Only string ids
// and integers >= 2^63 (the only integers a string id can equal) are
// remembered, each with its fingerprint; integer-only files cost nothing.
class CsvIdCollisions {
 public:
  // Records `id` of the line `reader` is on; counts a collision (and keeps
  // the first as an example) the first time it comes with a fingerprint
  // other than its first one.
  void Add(const LineReader& reader, std::uint64_t id, std::uint64_t fingerprint, std::string_view text,
           const char* what) {
    const auto [it, inserted] = seen_.emplace(id, fingerprint);
    if (inserted || it->second == fingerprint) return;
    if (!collided_.insert(id).second) return;  // counted: one per shared id, not per line
    ++collisions_;
    if (example_.empty()) {
      example_ = Concat(reader.path(), ":", reader.line_number(), ": ", what, " ", Quote(text),
                        " has the same 64-bit id as a different earlier ", what, " (", id, ")");
    }
  }
  std::uint64_t collisions() const { return collisions_; }
  const std::string& example() const { return example_; }

 private:
  std::unordered_map<std::uint64_t, std::uint64_t> seen_;  // id -> fingerprint of its first text
  std::unordered_set<std::uint64_t> collided_;
  std::uint64_t collisions_ = 0;
  std::string example_;
};

// A csv user or item id: an integer when the field is all digits, otherwise
// CsvStringId(field), so open vocabularies ("u123", UUIDs) work without an id
// map. Surrounding double quotes are removed; quoted fields with commas
// inside are not supported. With `collisions`, the id is also checked
// against the earlier ids there.
std::uint64_t ParseCsvId(const LineReader& reader, std::string_view field, const char* what,
                         CsvIdCollisions* collisions) {
  field = Trim(field);
  if (field.size() >= 2 && field.front() == '"' && field.back() == '"') field = Trim(field.substr(1, field.size() - 2));
  if (field.empty()) reader.Fail(Concat("expected ", what[0] == 'i' ? "an " : "a ", what, ", got an empty field"));
  if (AllDigits(field)) {
    const std::uint64_t id = ParseId(reader, field, what);
    if (collisions != nullptr && id >= kCsvStringIdBit) collisions->Add(reader, id, IntegerFingerprint(id), field, what);
    return id;
  }
  const std::uint64_t id = CsvStringId(field);
  if (collisions != nullptr) collisions->Add(reader, id, StringFingerprint(field), field, what);
  return id;
}

void ReadCsv(const DataOptions& options, const KeepUser& keep_user, Dataset* dataset, ItemSet* items) {
  LineReader reader(options.path);
  constexpr const char* kExpected = "a header line and comma-separated columns user,item[,timestamp]";
  std::vector<std::string_view> fields;
  std::string_view line;
  if (!reader.NextDataLine(&line)) ThrowInputError(options.path, 0, Concat("is empty; expected ", kExpected));

  // The header fixes the column count. MovieLens 20M/25M ratings.csv
  // (userId,movieId,rating,timestamp) is accepted too: its rating is skipped.
  const std::size_t columns = SplitFields(line, ",", &fields);
  const bool has_rating = columns == 4 && Trim(fields[2]) == "rating";
  if (columns != 2 && columns != 3 && !has_rating) {
    const bool tabs = line.find('\t') != std::string_view::npos;
    reader.Fail(Concat("expected a header of 2 or 3 comma-separated columns (user,item[,timestamp]), got ", columns,
                       tabs ? " (the line has tabs: a tab-separated file is format ml-100k or ncf, not csv)" : ""));
  }
  if (std::all_of(fields.begin(), fields.end(), [](std::string_view f) { return AllDigits(Trim(f)); })) {
    reader.Fail(Concat("expected a header line (user,item[,timestamp]); this line looks like data: ", Quote(line)));
  }
  const int ts_column = has_rating ? 3 : (columns == 3 ? 2 : -1);
  const std::int64_t header_line = reader.line_number();
  CsvIdCollisions user_collisions, item_collisions;

  while (reader.NextDataLine(&line)) {
    const std::size_t n = SplitFields(line, ",", &fields);
    if (n != columns) {
      reader.Fail(Concat("expected ", columns, " comma-separated columns as in the header (line ", header_line,
                         "), got ", n));
    }
    // Users are checked only if kept: a worker sees its own users (and every item).
    const std::uint64_t user = ParseCsvId(reader, fields[0], "user id", nullptr);
    const bool keep = keep_user(user);
    if (keep && user >= kCsvStringIdBit) ParseCsvId(reader, fields[0], "user id", &user_collisions);
    const std::uint64_t item = ParseCsvId(reader, fields[1], "item id", &item_collisions);
    if (has_rating) CheckRating(reader, fields[2]);
    const std::int64_t ts = ts_column >= 0 ? ParseTimestamp(reader, fields[ts_column]) : reader.line_number();
    items->Add(item);
    if (keep) dataset->interactions.push_back({user, item, ts});
  }
  if (reader.data_lines() < 2) ThrowInputError(options.path, 0, "has a header but no data lines");
  dataset->user_id_collisions += user_collisions.collisions();
  dataset->item_id_collisions += item_collisions.collisions();
  for (const auto* c : {&user_collisions, &item_collisions}) {
    if (dataset->id_collision_example.empty()) dataset->id_collision_example = c->example();
  }
}

// ---------------------------------------------------------------------------
// synthetic

void ReadSynthetic(const DataOptions& options, const KeepUser& keep_user, Dataset* dataset) {
  SyntheticOptions synthetic;
  synthetic.users = options.users;
  synthetic.items = options.items;
  synthetic.interactions_per_user = options.interactions_per_user;
  synthetic.seed = options.seed;
  const SyntheticGenerator generator(synthetic);
  for (std::uint64_t user = 0; user < synthetic.users; ++user) {
    if (!keep_user(user)) continue;
    const std::vector<Interaction> history = generator.GenerateUser(user);
    dataset->interactions.insert(dataset->interactions.end(), history.begin(), history.end());
  }
  // Every item, also those no user drew, so the universe is complete: as a
  // range, so that 50 million items cost nothing.
  dataset->dense_items = synthetic.items;
}

// Counts the ids among `ids` (sorted, unique) and [0, dense) whose key
// (MakeKey(field, id)) an earlier one of them has too. Only ids of 56 bits
// and more are hashed into keys, so only they can collide: with each other,
// or with the small id their hash equals. Describes the first collision in
// *example if empty.
std::uint64_t CountKeyCollisions(std::uint8_t field, const std::vector<std::uint64_t>& ids, std::uint64_t dense,
                                 const char* what, std::string* example) {
  const auto first_hashed = std::lower_bound(ids.begin(), ids.end(), kValueMask + 1);
  if (first_hashed == ids.end()) return 0;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> hashed;  // (key value, id)
  hashed.reserve(static_cast<std::size_t>(ids.end() - first_hashed));
  for (auto it = first_hashed; it != ids.end(); ++it) hashed.emplace_back(ValueOf(MakeKey(field, *it)), *it);
  std::sort(hashed.begin(), hashed.end());
  std::uint64_t collisions = 0;
  auto note = [&](std::uint64_t a, std::uint64_t b, std::uint64_t value) {
    ++collisions;
    if (example->empty()) {
      *example = Concat(what, "s ", a, " and ", b, " share the key value ", value,
                        " (ids of 56 bits and more, and csv string ids, are hashed into 56 bits)");
    }
  };
  for (std::size_t i = 0; i < hashed.size(); ++i) {
    const std::uint64_t value = hashed[i].first;
    if (i > 0 && hashed[i - 1].first == value) {
      note(hashed[i - 1].second, hashed[i].second, value);
    } else if (value < dense || std::binary_search(ids.begin(), first_hashed, value)) {
      note(value, hashed[i].second, value);
    }
  }
  return collisions;
}

void CheckKeyCollisions(Dataset* dataset) {
  dataset->item_id_collisions +=
      CountKeyCollisions(kFieldItem, dataset->items, dataset->dense_items, "item id", &dataset->id_collision_example);
  bool any_large = false;
  for (const auto& x : dataset->interactions) any_large |= x.user > kValueMask;
  if (!any_large) return;
  std::vector<std::uint64_t> users;
  users.reserve(dataset->interactions.size());
  for (const auto& x : dataset->interactions) users.push_back(x.user);
  std::sort(users.begin(), users.end());
  users.erase(std::unique(users.begin(), users.end()), users.end());
  dataset->user_id_collisions += CountKeyCollisions(kFieldUser, users, 0, "user id", &dataset->id_collision_example);
}

}  // namespace

std::uint64_t CsvStringId(std::string_view text) { return HashString(text) | kCsvStringIdBit; }

void ReadCandidatesFile(const std::string& path, const std::function<bool(std::uint64_t)>& keep_user,
                        Dataset* dataset) {
  ItemSet items;
  ReadCandidates(path, keep_user, CandidateChecks(), dataset, &items);
  items.MergeInto(&dataset->items);
}

Dataset ReadDataset(const DataOptions& options, const std::function<bool(std::uint64_t)>& keep_user) {
  Dataset dataset;
  ItemSet items;
  const std::string& format = options.format;
  if (format != "synthetic" && options.path.empty()) {
    throw InputError(Concat("data format '", format, "' needs a path (",
                            format == "ncf" ? "a file prefix" : (format == "csv" ? "a file" : "a folder"), ")"));
  }
  if (format == "synthetic") {
    ReadSynthetic(options, keep_user, &dataset);
  } else if (format == "ml-100k") {
    ReadMl100k(options, keep_user, &dataset, &items);
  } else if (format == "ml-1m") {
    ReadMl1m(options, keep_user, &dataset, &items);
  } else if (format == "ncf") {
    ReadNcf(options, keep_user, &dataset, &items);  // reads eval_candidates itself
  } else if (format == "csv") {
    ReadCsv(options, keep_user, &dataset, &items);
  } else {
    throw InputError(Concat("unknown data format '", format, "'; expected one of: synthetic, ml-100k, ml-1m, ncf, csv"));
  }
  if (!options.eval_candidates.empty() && format != "ncf") {
    const std::unordered_set<std::uint64_t> users_with_data = UsersOf(dataset.interactions);
    CandidateChecks checks;
    checks.users_with_data = &users_with_data;
    checks.data_path = format == "synthetic" ? std::string("the synthetic data") : options.path;
    checks.string_ids = format == "csv";
    ReadCandidates(options.eval_candidates, keep_user, checks, &dataset, &items);
  }
  items.MergeInto(&dataset.items);
  CheckKeyCollisions(&dataset);
  return dataset;
}

}  // namespace recsys
