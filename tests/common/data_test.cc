// Tests of the data layer: readers (every format and every error), the
// leave-one-out split, negative sampling and the synthetic generator.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/data/dataset.h"
#include "common/data/sampler.h"
#include "common/data/split.h"
#include "common/data/synthetic.h"
#include "common/error.h"
#include "common/keys.h"

namespace recsys {
namespace {

using Items = std::vector<std::uint64_t>;

bool KeepAll(std::uint64_t) { return true; }

// A fresh folder per test under testing::TempDir(), removed afterwards.
class DataFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = Concat(::testing::TempDir(), "/recsys_data_", ::getpid(), "_", info->test_suite_name(), "_", info->name());
    std::filesystem::remove_all(dir_);
    ASSERT_TRUE(std::filesystem::create_directories(dir_)) << dir_;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Writes `text` to dir/name and returns the full path.
  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = Path(name);
    std::ofstream out(path, std::ios::binary);
    out << text;
    return path;
  }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }
  const std::string& dir() const { return dir_; }

  DataOptions Options(const std::string& format, const std::string& path) const {
    DataOptions options;
    options.format = format;
    options.path = path;
    return options;
  }

 private:
  std::string dir_;
};

// Runs `read` and returns the InputError's message, or fails the test.
std::string ErrorOf(const std::function<void()>& read) {
  try {
    read();
  } catch (const InputError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an InputError";
  return "";
}

// Checks that `read` throws InputError "<file>:<line>: ...<detail>...".
void ExpectError(const std::function<void()>& read, const std::string& file, std::int64_t line,
                 const std::string& detail) {
  const std::string message = ErrorOf(read);
  const std::string location = line > 0 ? Concat(file, ":", line, ": ") : Concat(file, ": ");
  EXPECT_EQ(message.rfind(location, 0), 0u) << "message: " << message << "\nexpected to start with: " << location;
  EXPECT_NE(message.find(detail), std::string::npos) << "message: " << message << "\nexpected to contain: " << detail;
}

std::vector<Feature> FeaturesOf(const std::unordered_map<std::uint64_t, std::vector<Feature>>& map, std::uint64_t id) {
  const auto it = map.find(id);
  return it == map.end() ? std::vector<Feature>() : it->second;
}

// ---------------------------------------------------------------------------
// ml-100k

constexpr const char* kOccupations = "administrator\nother\ntechnician\nwriter\n";

// The 19 genre flags of u.item, set at the given genres.
std::string GenreFlags(std::set<int> on) {
  std::string flags;
  for (int g = 0; g < 19; ++g) flags += on.count(g) ? "|1" : "|0";
  return flags;
}

class ReaderMl100kTest : public DataFiles {
 protected:
  void WriteAll() {
    // CRLF on one line and no newline at the end: both must parse.
    Write("u.data", "1\t10\t5\t100\n2\t20\t3\t200\r\n1\t30\t4\t300\n3\t10\t1\t50");
    Write("u.user", "1|24|M|technician|85711\n2|53|F|other|94043\n3|17|M|writer|32067\n");
    Write("u.item", "10|Toy Story (1995)|01-Jan-1995||http://x" + GenreFlags({3, 4, 5}) +
                        "\n20|GoldenEye|01-Jan-1995||http://y" + GenreFlags({1}) +
                        "\n30|Unknown||||" + GenreFlags({}) +
                        "\n40|Never Rated|01-Jan-1995||http://z" + GenreFlags({8, 14}) + "\n");
    Write("u.occupation", kOccupations);
  }
};

TEST_F(ReaderMl100kTest, ParsesRatingsAndSideFeatures) {
  WriteAll();
  const Dataset data = ReadDataset(Options("ml-100k", dir()), KeepAll);
  ASSERT_EQ(data.interactions.size(), 4u);
  EXPECT_EQ(data.interactions[1].user, 2u);
  EXPECT_EQ(data.interactions[1].item, 20u);
  EXPECT_EQ(data.interactions[1].ts, 200);
  EXPECT_EQ(data.interactions[3].ts, 50);
  EXPECT_FALSE(data.has_given_test);
  EXPECT_EQ(data.num_users(), 3u);
  // Items of u.item count even when nobody rated them.
  EXPECT_EQ(data.items, (Items{10, 20, 30, 40}));

  EXPECT_EQ(data.user_slot_fields, (std::vector<std::uint8_t>{kFieldAge, kFieldGender, kFieldOccupation}));
  const std::vector<Feature> user1 = FeaturesOf(data.user_features, 1);
  ASSERT_EQ(user1.size(), 3u);
  EXPECT_EQ(user1[0].key, MakeKey(kFieldAge, 1));         // 24 -> 18-24
  EXPECT_EQ(user1[1].key, MakeKey(kFieldGender, 0));      // M
  EXPECT_EQ(user1[2].key, MakeKey(kFieldOccupation, 2));  // line 3 of u.occupation
  EXPECT_EQ(user1[0].value, 1.0f);
  const std::vector<Feature> user2 = FeaturesOf(data.user_features, 2);
  ASSERT_EQ(user2.size(), 3u);
  EXPECT_EQ(user2[0].key, MakeKey(kFieldAge, 5));  // 53 -> 50-55
  EXPECT_EQ(user2[1].key, MakeKey(kFieldGender, 1));
  EXPECT_EQ(user2[2].key, MakeKey(kFieldOccupation, 1));
  EXPECT_EQ(FeaturesOf(data.user_features, 3)[0].key, MakeKey(kFieldAge, 0));  // 17 -> under 18

  // Slots for the most genres any item has (3).
  EXPECT_EQ(data.item_slot_fields, (std::vector<std::uint8_t>{kFieldGenre, kFieldGenre, kFieldGenre}));
  const std::vector<Feature> toy = FeaturesOf(data.item_features, 10);
  ASSERT_EQ(toy.size(), 3u);
  EXPECT_EQ(toy[0].key, MakeKey(kFieldGenre, 3));
  EXPECT_EQ(toy[2].key, MakeKey(kFieldGenre, 5));
  EXPECT_FLOAT_EQ(toy[1].value, 1.0f / 3);
  EXPECT_FLOAT_EQ(FeaturesOf(data.item_features, 20)[0].value, 1.0f);
  EXPECT_TRUE(FeaturesOf(data.item_features, 30).empty());  // no genre flag set
  EXPECT_EQ(FeaturesOf(data.item_features, 40).size(), 2u);
}

TEST_F(ReaderMl100kTest, KeepsOnlyFilteredUsersButAllItems) {
  WriteAll();
  const Dataset data = ReadDataset(Options("ml-100k", dir()), [](std::uint64_t user) { return user == 2; });
  ASSERT_EQ(data.interactions.size(), 1u);
  EXPECT_EQ(data.interactions[0].user, 2u);
  EXPECT_EQ(data.user_features.size(), 1u);
  EXPECT_EQ(data.user_features.count(2), 1u);
  EXPECT_EQ(data.item_features.size(), 3u);  // every item of u.item with a genre
  EXPECT_EQ(data.items, (Items{10, 20, 30, 40}));
}

TEST_F(ReaderMl100kTest, SideFeaturesOffOrAbsent) {
  WriteAll();
  DataOptions options = Options("ml-100k", dir());
  options.side_features = false;
  Dataset data = ReadDataset(options, KeepAll);
  EXPECT_TRUE(data.user_features.empty());
  EXPECT_TRUE(data.item_slot_fields.empty());
  EXPECT_TRUE(data.user_slot_fields.empty());
  EXPECT_EQ(data.items, (Items{10, 20, 30}));

  ::unlink(Path("u.user").c_str());
  ::unlink(Path("u.item").c_str());
  data = ReadDataset(Options("ml-100k", dir()), KeepAll);
  EXPECT_TRUE(data.user_features.empty());
  EXPECT_TRUE(data.item_features.empty());
  EXPECT_TRUE(data.user_slot_fields.empty());
  EXPECT_TRUE(data.item_slot_fields.empty());
}

TEST_F(ReaderMl100kTest, OccupationWithoutListIsAStableHash) {
  WriteAll();
  Write("u.user", "1|24|M|technician|1\n2|30|F|technician|2\n3|40|M|writer|3\n");
  ::unlink(Path("u.occupation").c_str());
  const Dataset a = ReadDataset(Options("ml-100k", dir()), KeepAll);
  const Dataset b = ReadDataset(Options("ml-100k", dir()), [](std::uint64_t user) { return user != 1; });
  const Key technician = FeaturesOf(a.user_features, 1)[2].key;
  EXPECT_EQ(FieldOf(technician), kFieldOccupation);
  EXPECT_EQ(FeaturesOf(a.user_features, 2)[2].key, technician);
  EXPECT_EQ(FeaturesOf(b.user_features, 2)[2].key, technician);  // the same on another worker
  EXPECT_NE(FeaturesOf(a.user_features, 3)[2].key, technician);
}

TEST_F(ReaderMl100kTest, Errors) {
  WriteAll();
  const DataOptions options = Options("ml-100k", dir());
  auto read = [&] { ReadDataset(options, KeepAll); };
  const std::string data = Path("u.data");

  Write("u.data", "1\t10\t5\t100\n2\t20\t3\n");
  ExpectError(read, data, 2, "expected 4 tab-separated columns (user item rating timestamp), got 3");
  Write("u.data", "1\t10\t5\t100\nabc\t20\t3\t7\n");
  ExpectError(read, data, 2, "expected a non-negative integer user id, got 'abc'");
  Write("u.data", "1 \t10x\t5\t100\n");
  ExpectError(read, data, 1, "expected a non-negative integer item id, got '10x'");
  Write("u.data", "-4\t10\t5\t100\n");
  ExpectError(read, data, 1, "user id '-4' is negative");
  Write("u.data", "1\t10\t5\t100\n1\t18446744073709551616\t5\t100\n");
  ExpectError(read, data, 2, "item id '18446744073709551616' does not fit in 64 bits");
  Write("u.data", "1\t10\t5\t1.5\n");
  ExpectError(read, data, 1, "expected an integer timestamp, got '1.5'");
  Write("u.data", "1\t10\t5\t99999999999999999999\n");
  ExpectError(read, data, 1, "timestamp '99999999999999999999' does not fit in 64 bits");
  Write("u.data", "1\t10\tfive\t100\n");
  ExpectError(read, data, 1, "expected a numeric rating, got 'five'");
  Write("u.data", "");
  ExpectError(read, data, 0, "is empty");
  Write("u.data", "\n\n");
  ExpectError(read, data, 0, "is empty");
  ::unlink(data.c_str());
  ExpectError(read, data, 0, "cannot open: No such file or directory");
  ::mkdir(data.c_str(), 0755);
  ExpectError(read, data, 0, "directory");
  ::rmdir(data.c_str());

  WriteAll();
  Write("u.user", "1|24|M|technician|85711\n2|53|X|other|94043\n");
  ExpectError(read, Path("u.user"), 2, "expected gender M or F, got 'X'");
  Write("u.user", "1|24|M|technician\n");
  ExpectError(read, Path("u.user"), 1, "expected 5 '|'-separated fields");
  Write("u.user", "1|24|M|astronaut|85711\n");
  ExpectError(read, Path("u.user"), 1, "unknown occupation 'astronaut'");
  Write("u.user", "1|24|M|other|1\n1|25|F|other|2\n");
  ExpectError(read, Path("u.user"), 2, "user 1 is defined twice (first on line 1)");
  Write("u.user", "1|twenty|M|other|1\n");
  ExpectError(read, Path("u.user"), 1, "expected a non-negative integer age, got 'twenty'");

  WriteAll();
  Write("u.item", "10|Toy Story||" + GenreFlags({1}) + "\n");
  ExpectError(read, Path("u.item"), 1, "expected at least 24 '|'-separated fields");
  Write("u.item", "10|Toy Story||||0|0|2|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n");
  ExpectError(read, Path("u.item"), 1, "expected genre flag 0 or 1 for Adventure (field 8), got '2'");
}

TEST_F(ReaderMl100kTest, TitleWithSeparatorUsesLastFlags) {
  WriteAll();
  Write("u.item", "10|A|B (1995)|01-Jan-1995||http://x" + GenreFlags({7}) + "\n");
  const Dataset data = ReadDataset(Options("ml-100k", dir()), KeepAll);
  ASSERT_EQ(FeaturesOf(data.item_features, 10).size(), 1u);
  EXPECT_EQ(FeaturesOf(data.item_features, 10)[0].key, MakeKey(kFieldGenre, 7));
}

TEST_F(ReaderMl100kTest, ChunkBoundariesAndLongLines) {
  // Larger than the 1 MiB read buffer, so lines straddle chunk boundaries.
  std::string text;
  constexpr int kLines = 100000;
  for (int i = 0; i < kLines; ++i) text += Concat(i % 997, "\t", i % 1009, "\t1\t", i, "\n");
  Write("u.data", text);
  const Dataset data = ReadDataset(Options("ml-100k", dir()), KeepAll);
  ASSERT_EQ(data.interactions.size(), static_cast<std::size_t>(kLines));
  for (int i = 0; i < kLines; ++i) {
    ASSERT_EQ(data.interactions[i].user, static_cast<std::uint64_t>(i % 997));
    ASSERT_EQ(data.interactions[i].item, static_cast<std::uint64_t>(i % 1009));
    ASSERT_EQ(data.interactions[i].ts, i);
  }
  EXPECT_EQ(data.items.size(), 1009u);

  // One line longer than the buffer.
  std::string line = "(7,0)";
  for (int i = 1; i <= 300000; ++i) line += Concat("\t", i);
  const std::string candidates = Write("long.negative", line + "\n");
  Dataset with_candidates;
  ReadCandidatesFile(candidates, KeepAll, &with_candidates);
  ASSERT_EQ(with_candidates.test_candidates[7].size(), 300000u);
  EXPECT_EQ(with_candidates.test_candidates[7].back(), 300000u);
  EXPECT_EQ(with_candidates.items.size(), 300001u);
}

// ---------------------------------------------------------------------------
// ml-1m

TEST_F(DataFiles, ReaderMl1mParsesAllFiles) {
  Write("ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\r\n2::1193::4::978298413\n");
  Write("users.dat", "1::F::1::10::48067\n2::M::56::16::70072\n");
  Write("movies.dat",
        "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
        "661::James and the Giant Peach (1996)::Animation|Children's|Musical\n"
        "5::Film::With::Colons (1995)::Comedy\n");
  const Dataset data = ReadDataset(Options("ml-1m", dir()), KeepAll);
  ASSERT_EQ(data.interactions.size(), 3u);
  EXPECT_EQ(data.interactions[1].item, 661u);
  EXPECT_EQ(data.interactions[1].ts, 978302109);
  EXPECT_EQ(data.items, (Items{5, 661, 1193}));
  const std::vector<Feature> user1 = FeaturesOf(data.user_features, 1);
  ASSERT_EQ(user1.size(), 3u);
  EXPECT_EQ(user1[0].key, MakeKey(kFieldAge, 0));
  EXPECT_EQ(user1[1].key, MakeKey(kFieldGender, 1));
  EXPECT_EQ(user1[2].key, MakeKey(kFieldOccupation, 10));
  EXPECT_EQ(FeaturesOf(data.user_features, 2)[0].key, MakeKey(kFieldAge, 6));
  // Genres use ml-100k's numbering: Animation 3, Children's 4, Musical 12.
  const std::vector<Feature> peach = FeaturesOf(data.item_features, 661);
  ASSERT_EQ(peach.size(), 3u);
  EXPECT_EQ(peach[0].key, MakeKey(kFieldGenre, 3));
  EXPECT_EQ(peach[1].key, MakeKey(kFieldGenre, 4));
  EXPECT_EQ(peach[2].key, MakeKey(kFieldGenre, 12));
  EXPECT_FLOAT_EQ(peach[0].value, 1.0f / 3);
  EXPECT_EQ(FeaturesOf(data.item_features, 5)[0].key, MakeKey(kFieldGenre, 5));
  EXPECT_EQ(data.item_slot_fields.size(), 3u);
  EXPECT_EQ(data.user_slot_fields.size(), 3u);
}

TEST_F(DataFiles, ReaderMl1mErrors) {
  Write("ratings.dat", "1::1193::5::978300760\n");
  Write("users.dat", "1::F::1::10::48067\n");
  Write("movies.dat", "1193::Cuckoo::Drama\n");
  auto read = [&] { ReadDataset(Options("ml-1m", dir()), KeepAll); };

  Write("ratings.dat", "1::1193::5::978300760\n1\t661\t3\t978302109\n");
  ExpectError(read, Path("ratings.dat"), 2,
              "expected 4 '::'-separated columns (user::item::rating::timestamp), got 1");
  Write("ratings.dat", "1::1193::5::978300760\n");
  Write("users.dat", "1::F::30::10::48067\n");
  ExpectError(read, Path("users.dat"), 1, "expected an age code (1, 18, 25, 35, 45, 50 or 56), got 30");
  Write("users.dat", "1::F::1::ten::48067\n");
  ExpectError(read, Path("users.dat"), 1, "expected a non-negative integer occupation code, got 'ten'");
  Write("users.dat", "1::F::1::10::48067\n");
  Write("movies.dat", "1193::Cuckoo::Drama\n2::Other::Drama|Sci Fi\n");
  ExpectError(read, Path("movies.dat"), 2, "unknown genre 'Sci Fi'");
  Write("movies.dat", "1193 Cuckoo Drama\n");
  ExpectError(read, Path("movies.dat"), 1, "got 1 field");
}

// ---------------------------------------------------------------------------
// ncf

class ReaderNcfTest : public DataFiles {
 protected:
  void WriteAll() {
    Write("d.train.rating", "0\t5\t1\t10\n0\t6\t1\t11\n1\t5\t1\t12\n1\t7\t1\t13\n2\t8\t1\t9\n");
    Write("d.test.rating", "0\t7\t1\t20\n1\t6\t1\t21\n2\t5\t1\t22\n");
    Write("d.test.negative", "(0,7)\t1\t2\t3\n(1,6)\t2\t3\t4\r\n(2,5)\t9\t3\t4\t\n");
  }
  DataOptions NcfOptions() const { return Options("ncf", Path("d")); }
};

TEST_F(ReaderNcfTest, ReadsTrainTestAndNegatives) {
  WriteAll();
  const Dataset data = ReadDataset(NcfOptions(), KeepAll);
  EXPECT_TRUE(data.has_given_test);
  // Train rows, then the kept test rows.
  ASSERT_EQ(data.interactions.size(), 8u);
  EXPECT_EQ(data.interactions[5].user, 0u);
  EXPECT_EQ(data.interactions[5].item, 7u);
  EXPECT_EQ(data.test_item.at(0), 7u);
  EXPECT_EQ(data.test_item.at(1), 6u);
  EXPECT_EQ(data.test_candidates.at(1), (Items{2, 3, 4}));
  EXPECT_EQ(data.test_candidates.at(2), (Items{9, 3, 4}));  // trailing tab tolerated
  EXPECT_EQ(data.items, (Items{1, 2, 3, 4, 5, 6, 7, 8, 9}));

  // The split holds the given item out even where it is not the latest.
  SplitStats stats;
  const std::vector<UserHistory> users = LeaveOneOutSplit(data, false, &stats);
  ASSERT_EQ(users.size(), 3u);
  EXPECT_EQ(users[1].test_item, 6u);
  EXPECT_EQ(users[1].train, (Items{5, 7}));
  EXPECT_EQ(users[1].positives, (Items{5, 6, 7}));
  EXPECT_EQ(stats.users_without_test, 0u);
}

TEST_F(ReaderNcfTest, KeepsOnlyFilteredUsers) {
  WriteAll();
  const Dataset data = ReadDataset(NcfOptions(), [](std::uint64_t user) { return user == 1; });
  EXPECT_EQ(data.interactions.size(), 3u);
  EXPECT_EQ(data.test_item.size(), 1u);
  EXPECT_EQ(data.test_candidates.size(), 1u);
  EXPECT_EQ(data.items, (Items{1, 2, 3, 4, 5, 6, 7, 8, 9}));  // every line counts
}

TEST_F(ReaderNcfTest, EvalCandidatesReplaceTheNegativesFile) {
  WriteAll();
  DataOptions options = NcfOptions();
  options.eval_candidates = Write("other.negative", "(0,7)\t11\n(1,6)\t12\n(2,5)\t13\n");
  const Dataset data = ReadDataset(options, KeepAll);
  EXPECT_EQ(data.test_candidates.at(0), (Items{11}));
  EXPECT_EQ(data.items.back(), 13u);
}

TEST_F(ReaderNcfTest, Errors) {
  auto read = [&] { ReadDataset(NcfOptions(), KeepAll); };
  const std::string negative = Path("d.test.negative");
  const std::string test = Path("d.test.rating");

  WriteAll();
  Write("d.test.negative", "(0,7)\t1\t2\t3\n(1,5)\t2\t3\t4\n(2,5)\t9\t3\t4\n");
  ExpectError(read, negative, 2, Concat("test item of user 1 is 5 here but 6 in ", test, ":2"));
  Write("d.test.negative", "(0,7)\t1\t2\t3\n(1,6)\t2\t3\n(2,5)\t9\t3\t4\n");
  ExpectError(read, negative, 2, "expected 3 candidate items (as on line 1), got 2");
  Write("d.test.negative", "(0,7)\t1\t2\t3\n(1,6)\t2\t3\t4\n(0,7)\t9\t3\t4\n");
  ExpectError(read, negative, 3, "user 0 already has a line (line 1)");
  Write("d.test.negative", "(0,7)\t1\t2\t3\n(1,6)\t2\t3\t4\n(3,5)\t9\t3\t4\n");
  ExpectError(read, negative, 3, Concat("user 3 has no test item in ", test));
  Write("d.test.negative", "(0,7)\t1\t2\t3\n(2,5)\t9\t3\t4\n");
  ExpectError(read, test, 2, Concat("user 1 has a test item but no line in ", negative));
  Write("d.test.negative", "0 7 1 2 3\n");
  ExpectError(read, negative, 1, "expected '(user,item)' followed by tab-separated candidate item ids");
  Write("d.test.negative", "(0;7)\t1\n");
  ExpectError(read, negative, 1, "expected '(user,item)'");
  Write("d.test.negative", "(0,7)\n");
  ExpectError(read, negative, 1, "got no candidates");
  Write("d.test.negative", "(0,7)\t1\tx\t3\n");
  ExpectError(read, negative, 1, "expected a non-negative integer candidate item id, got 'x'");
  Write("d.test.negative", "");
  ExpectError(read, negative, 0, "is empty");
  ::unlink(negative.c_str());
  ExpectError(read, negative, 0, "cannot open");

  WriteAll();
  Write("d.test.rating", "0\t7\t1\t20\n1\t6\t1\t21\n0\t5\t1\t22\n");
  ExpectError(read, test, 3, "user 0 already has a test item (line 1)");
  Write("d.test.rating", "0\t7\t1\t20\n1\t6\t1\t21\n9\t5\t1\t22\n");
  ExpectError(read, test, 3, "user 9 has a test item but no interactions in");
  Write("d.train.rating", "0\t5\t1\t10\n0\t6\t1\n");
  ExpectError(read, Path("d.train.rating"), 2, "expected 4 tab-separated columns");
}

// The public ReadCandidatesFile on its own, as --eval-candidates uses it.
TEST_F(DataFiles, ReaderCandidatesFileWithOtherFormats) {
  Write("u.data", "1\t10\t5\t100\n1\t11\t5\t101\n2\t12\t5\t102\n");
  DataOptions options = Options("ml-100k", dir());
  options.eval_candidates = Write("eval.negative", "(1,11)\t20\t21\n(2,13)\t22\t23\n");
  const Dataset data = ReadDataset(options, KeepAll);
  EXPECT_TRUE(data.has_given_test);
  EXPECT_EQ(data.test_item.at(2), 13u);
  EXPECT_EQ(data.items, (Items{10, 11, 12, 13, 20, 21, 22, 23}));

  options.eval_candidates = Write("eval.negative", "(1,11)\t20\t21\n(5,13)\t22\t23\n");
  ExpectError([&] { ReadDataset(options, KeepAll); }, options.eval_candidates, 2,
              "user 5 has no interactions in");
  // A worker that does not own user 5 does not know; the one that does fails.
  EXPECT_NO_THROW(ReadDataset(options, [](std::uint64_t user) { return user != 5; }));

  Dataset direct;
  ReadCandidatesFile(options.eval_candidates, [](std::uint64_t user) { return user == 5; }, &direct);
  EXPECT_TRUE(direct.has_given_test);
  EXPECT_EQ(direct.test_item.size(), 1u);
  EXPECT_EQ(direct.test_candidates.at(5), (Items{22, 23}));
  EXPECT_EQ(direct.items, (Items{11, 13, 20, 21, 22, 23}));
}

// ---------------------------------------------------------------------------
// csv

TEST_F(DataFiles, ReaderCsvThreeColumns) {
  const std::string path = Write("d.csv", "user,item,time\n1,10,500\n2,20,-3\r\n\n1,30,600\n");
  const Dataset data = ReadDataset(Options("csv", path), KeepAll);
  ASSERT_EQ(data.interactions.size(), 3u);
  EXPECT_EQ(data.interactions[1].ts, -3);
  EXPECT_EQ(data.interactions[2].item, 30u);
  EXPECT_EQ(data.items, (Items{10, 20, 30}));
  EXPECT_TRUE(data.user_slot_fields.empty());
}

TEST_F(DataFiles, ReaderCsvTwoColumnsUsesLineNumbers) {
  const std::string path = Write("d.csv", "u,i\n1,10\n1,20\n");
  const Dataset data = ReadDataset(Options("csv", path), KeepAll);
  ASSERT_EQ(data.interactions.size(), 2u);
  EXPECT_EQ(data.interactions[0].ts, 2);
  EXPECT_EQ(data.interactions[1].ts, 3);
}

TEST_F(DataFiles, ReaderCsvHashesStringIds) {
  const std::string path = Write("d.csv", "user,item\nalice,book-1\nbob,\"book-1\"\nalice,7\n");
  const Dataset data = ReadDataset(Options("csv", path), KeepAll);
  ASSERT_EQ(data.interactions.size(), 3u);
  EXPECT_EQ(data.interactions[0].user, data.interactions[2].user);
  EXPECT_NE(data.interactions[0].user, data.interactions[1].user);
  EXPECT_EQ(data.interactions[0].item, data.interactions[1].item);  // quotes removed
  EXPECT_EQ(data.interactions[2].item, 7u);                          // digits stay integers
  EXPECT_NE(data.interactions[0].item, 7u);
  // Stable: another read (another worker) maps the strings the same way.
  const Dataset again = ReadDataset(Options("csv", path), [](std::uint64_t) { return true; });
  EXPECT_EQ(again.interactions[0].user, data.interactions[0].user);
}

TEST_F(DataFiles, ReaderCsvMovieLensRatings) {
  const std::string path =
      Write("ratings.csv", "userId,movieId,rating,timestamp\n1,2,3.5,1112486027\n1,29,3.5,1112484676\n");
  const Dataset data = ReadDataset(Options("csv", path), KeepAll);
  ASSERT_EQ(data.interactions.size(), 2u);
  EXPECT_EQ(data.interactions[1].item, 29u);
  EXPECT_EQ(data.interactions[1].ts, 1112484676);
}

TEST_F(DataFiles, ReaderCsvErrors) {
  const std::string path = Path("d.csv");
  auto read = [&] { ReadDataset(Options("csv", path), KeepAll); };
  Write("d.csv", "user,item,time\n1,10,5\n1,10\n");
  ExpectError(read, path, 3, "expected 3 comma-separated columns as in the header (line 1), got 2");
  Write("d.csv", "user,item,time,extra\n1,10,5,1\n");
  ExpectError(read, path, 1, "expected a header of 2 or 3 comma-separated columns (user,item[,timestamp]), got 4");
  Write("d.csv", "user\n1\n");
  ExpectError(read, path, 1, "got 1");
  Write("d.csv", "1,10,5\n2,10,6\n");
  ExpectError(read, path, 1, "this line looks like data");
  Write("d.csv", "user,item\n");
  ExpectError(read, path, 0, "has a header but no data lines");
  Write("d.csv", "");
  ExpectError(read, path, 0, "is empty");
  Write("d.csv", "user,item,time\n1,10,yesterday\n");
  ExpectError(read, path, 2, "expected an integer timestamp, got 'yesterday'");
  Write("d.csv", "user,item\n1,99999999999999999999\n");
  ExpectError(read, path, 2, "item id '99999999999999999999' does not fit in 64 bits");
  Write("d.csv", "user,item\n,5\n");
  ExpectError(read, path, 2, "expected a user id, got an empty field");
  Write("d.csv", "userId,movieId,rating,timestamp\n1,2,good,5\n");
  ExpectError(read, path, 2, "expected a numeric rating, got 'good'");
}

TEST_F(DataFiles, ReaderCsvEmptyIdsNameFileAndLine) {
  const std::string path = Path("d.csv");
  auto read = [&] { ReadDataset(Options("csv", path), KeepAll); };
  Write("d.csv", "user,item\nalice,book\nbob,   \n");
  ExpectError(read, path, 3, "expected an item id, got an empty field");
  Write("d.csv", "user,item\nalice,book\n\n\"\",book\n");
  ExpectError(read, path, 4, "expected a user id, got an empty field");
  Write("d.csv", "user,item,ts\nalice,\" \",5\n");
  ExpectError(read, path, 2, "expected an item id, got an empty field");
  Write("d.csv", "user,item\nalice,-5\n1,18446744073709551616\n");
  ExpectError(read, path, 3, "item id '18446744073709551616' does not fit in 64 bits");
}

TEST_F(DataFiles, ReaderCsvTakesStringAndHugeIds) {
  const std::string path = Write("d.csv",
                                 "user,item\n"
                                 "alice,18446744073709551615\n"                  // 2^64 - 1
                                 "\"alice\",72057594037927936\n"                 // 2^56
                                 "3f2b8e1c-9a4d-4c7e-b1f0-5d6e7a8b9c0d,72057594037927935\n"  // 2^56 - 1
                                 " bob ,book/1 \n"
                                 "18446744073709551615,-5\n");
  const Dataset data = ReadDataset(Options("csv", path), KeepAll);
  ASSERT_EQ(data.interactions.size(), 5u);
  const auto& x = data.interactions;
  EXPECT_EQ(x[0].user, CsvStringId("alice"));
  EXPECT_EQ(x[1].user, CsvStringId("alice"));  // quotes removed
  EXPECT_EQ(x[2].user, CsvStringId("3f2b8e1c-9a4d-4c7e-b1f0-5d6e7a8b9c0d"));
  EXPECT_EQ(x[3].user, CsvStringId("bob"));  // spaces trimmed
  EXPECT_EQ(x[4].user, 18446744073709551615ULL);
  EXPECT_EQ(x[0].item, 18446744073709551615ULL);
  EXPECT_EQ(x[1].item, std::uint64_t{1} << 56);
  EXPECT_EQ(x[2].item, (std::uint64_t{1} << 56) - 1);
  EXPECT_EQ(x[3].item, CsvStringId("book/1"));
  EXPECT_EQ(x[4].item, CsvStringId("-5"));  // not a non-negative integer: a string
  for (const char* s : {"alice", "bob", "-5", ""}) EXPECT_GE(CsvStringId(s), kCsvStringIdBit) << s;
  EXPECT_NE(CsvStringId("alice"), CsvStringId("Alice"));
  // Every distinct id has its own key (2^56 - 1 stays as it is; the larger
  // ones and the strings are hashed into 56 bits).
  std::set<Key> item_keys, user_keys;
  for (std::uint64_t item : data.items) item_keys.insert(MakeKey(kFieldItem, item));
  EXPECT_EQ(item_keys.size(), 5u);
  EXPECT_TRUE(item_keys.count(MakeKey(kFieldItem, (std::uint64_t{1} << 56) - 1)));
  EXPECT_EQ(ValueOf(MakeKey(kFieldItem, (std::uint64_t{1} << 56) - 1)), (std::uint64_t{1} << 56) - 1);
  for (const auto& i : x) user_keys.insert(MakeKey(kFieldUser, i.user));
  EXPECT_EQ(user_keys.size(), 4u);
  EXPECT_EQ(data.user_id_collisions, 0u);
  EXPECT_EQ(data.item_id_collisions, 0u);
  EXPECT_EQ(data.id_collision_example, "");
}

TEST_F(DataFiles, ReaderCsvStringIdsInACandidatesFile) {
  // --eval-candidates with csv data: its ids are taken as the csv file's.
  DataOptions options = Options("csv", Write("d.csv", "user,item\nalice,book\nalice,pen\nbob,pen\nbob,cup\n"));
  options.eval_candidates = Write("c.negative", "(alice,pen)\tcup\tlamp\n(bob,cup)\tbook\t\"lamp\"\n");
  const Dataset data = ReadDataset(options, KeepAll);
  EXPECT_TRUE(data.has_given_test);
  EXPECT_EQ(data.test_item.at(CsvStringId("alice")), CsvStringId("pen"));
  EXPECT_EQ(data.test_candidates.at(CsvStringId("bob")), (Items{CsvStringId("book"), CsvStringId("lamp")}));
  EXPECT_TRUE(std::binary_search(data.items.begin(), data.items.end(), CsvStringId("lamp")));
  // Other formats keep integer ids there.
  options.eval_candidates = Write("bad.negative", "(alice,pen)\t1\n");
  options.format = "synthetic";
  ExpectError([&] { ReadDataset(options, KeepAll); }, options.eval_candidates, 1, "expected a non-negative integer user id");
}

TEST_F(DataFiles, ReaderCsvCountsIdsThatShareAKey) {
  // Ids of 56 bits and more are hashed into keys: a small id equal to that
  // hash shares the key. Found for items (all of them) and kept users.
  const std::uint64_t big = (std::uint64_t{1} << 56) + 12345;
  const std::uint64_t small_item = ValueOf(MakeKey(kFieldItem, big));
  const std::uint64_t small_user = ValueOf(MakeKey(kFieldUser, CsvStringId("apple")));
  ASSERT_LT(small_item, std::uint64_t{1} << 56);
  const std::string path = Write("d.csv", Concat("user,item\napple,", big, "\n", small_user, ",", small_item,
                                                "\npear,", small_item, "\n"));
  const Dataset data = ReadDataset(Options("csv", path), KeepAll);
  EXPECT_EQ(data.item_id_collisions, 1u);
  EXPECT_EQ(data.user_id_collisions, 1u);
  EXPECT_NE(data.id_collision_example.find(Concat(small_item, " and ", big)), std::string::npos)
      << data.id_collision_example;
  // A worker that keeps only one of the two users sees no user collision.
  const Dataset part = ReadDataset(Options("csv", path), [&](std::uint64_t u) { return u != small_user; });
  EXPECT_EQ(part.user_id_collisions, 0u);
  EXPECT_EQ(part.item_id_collisions, 1u);
}

TEST_F(DataFiles, ReaderCsvCountsAStringAndAnIntegerWithTheSameId) {
  // A string's 64-bit id written out as an integer is another id with the
  // same 64-bit value: found by the ids' fingerprints, named by file and line.
  const std::uint64_t apple = CsvStringId("apple");
  const std::string path = Write("d.csv", Concat("user,item\nu1,apple\nu2,", apple, "\nu3,apple\nu4,", apple, "\n"));
  const Dataset data = ReadDataset(Options("csv", path), KeepAll);
  EXPECT_EQ(data.items.size(), 1u);
  EXPECT_EQ(data.item_id_collisions, 1u);  // one id shared, however often
  EXPECT_EQ(data.id_collision_example.rfind(Concat(path, ":3: item id '", apple, "'"), 0), 0u)
      << data.id_collision_example;
  EXPECT_EQ(data.user_id_collisions, 0u);
}

// ---------------------------------------------------------------------------
// synthetic and dispatch

TEST(ReaderSynthetic, GeneratesKeptUsersAndEveryItem) {
  DataOptions options;
  options.users = 50;
  options.items = 40;
  options.interactions_per_user = 5;
  const Dataset data = ReadDataset(options, [](std::uint64_t user) { return user % 2 == 0; });
  EXPECT_EQ(data.num_users(), 25u);
  EXPECT_EQ(data.interactions.size(), 125u);
  for (const Interaction& x : data.interactions) EXPECT_EQ(x.user % 2, 0u);
  // Every item 0..39, as a range rather than a list.
  EXPECT_EQ(data.dense_items, 40u);
  EXPECT_TRUE(data.items.empty());
  EXPECT_FALSE(data.has_given_test);
}

TEST(ReaderDispatch, UnknownFormatAndMissingPath) {
  DataOptions options;
  options.format = "parquet";
  options.path = "/tmp/x";
  const std::string unknown = ErrorOf([&] { ReadDataset(options, KeepAll); });
  EXPECT_NE(unknown.find("unknown data format 'parquet'"), std::string::npos) << unknown;
  options.format = "ml-100k";
  options.path = "";
  const std::string missing = ErrorOf([&] { ReadDataset(options, KeepAll); });
  EXPECT_NE(missing.find("needs a path"), std::string::npos) << missing;
}

// ---------------------------------------------------------------------------
// Split

Dataset DataOf(const std::vector<Interaction>& interactions) {
  Dataset data;
  data.interactions = interactions;
  return data;
}

TEST(SplitTest, LatestIsTestAndOutputSortedByUser) {
  const Dataset data = DataOf({{7, 1, 30}, {3, 5, 2}, {7, 2, 10}, {7, 3, 20}, {3, 6, 1}});
  SplitStats stats;
  const std::vector<UserHistory> users = LeaveOneOutSplit(data, false, &stats);
  ASSERT_EQ(users.size(), 2u);
  EXPECT_EQ(users[0].user, 3u);
  EXPECT_EQ(users[0].train, (Items{6}));
  EXPECT_EQ(users[0].test_item, 5u);
  EXPECT_EQ(users[1].user, 7u);
  EXPECT_TRUE(users[1].has_test);
  EXPECT_EQ(users[1].test_item, 1u);
  EXPECT_EQ(users[1].train, (Items{2, 3}));  // oldest first
  EXPECT_EQ(users[1].positives, (Items{1, 2, 3}));
  EXPECT_FALSE(users[1].has_valid);
  EXPECT_EQ(stats.users, 2u);
  EXPECT_EQ(stats.users_without_test, 0u);
  EXPECT_EQ(stats.duplicates_merged, 0u);
}

TEST(SplitTest, EqualTimestampsLaterLineWins) {
  const Dataset data = DataOf({{1, 10, 5}, {1, 20, 5}, {1, 30, 5}, {1, 40, 4}});
  const std::vector<UserHistory> users = LeaveOneOutSplit(data, false, nullptr);
  ASSERT_EQ(users.size(), 1u);
  EXPECT_EQ(users[0].test_item, 30u);
  EXPECT_EQ(users[0].train, (Items{40, 10, 20}));
}

TEST(SplitTest, DuplicatesMergedAtLatestTime) {
  // Item 10 at times 1 and 3: one positive at time 3, so it is the test item.
  const Dataset data = DataOf({{1, 10, 1}, {1, 20, 2}, {1, 10, 3}, {2, 5, 1}, {2, 5, 1}, {2, 6, 0}});
  SplitStats stats;
  const std::vector<UserHistory> users = LeaveOneOutSplit(data, false, &stats);
  ASSERT_EQ(users.size(), 2u);
  EXPECT_EQ(users[0].test_item, 10u);
  EXPECT_EQ(users[0].train, (Items{20}));
  EXPECT_EQ(users[0].positives, (Items{10, 20}));
  EXPECT_EQ(users[1].test_item, 5u);
  EXPECT_EQ(users[1].train, (Items{6}));
  EXPECT_EQ(stats.duplicates_merged, 2u);
}

TEST(SplitTest, SingleInteractionUsersTrainWithoutTest) {
  const Dataset data = DataOf({{1, 10, 1}, {2, 20, 1}, {2, 20, 2}, {3, 1, 1}, {3, 2, 2}});
  SplitStats stats;
  const std::vector<UserHistory> users = LeaveOneOutSplit(data, true, &stats);
  ASSERT_EQ(users.size(), 3u);
  EXPECT_FALSE(users[0].has_test);
  EXPECT_EQ(users[0].train, (Items{10}));
  EXPECT_EQ(users[0].positives, (Items{10}));
  EXPECT_FALSE(users[1].has_test);  // one distinct item, seen twice
  EXPECT_EQ(users[1].train, (Items{20}));
  EXPECT_TRUE(users[2].has_test);
  EXPECT_FALSE(users[2].has_valid);  // 2 items: nothing left for validation
  EXPECT_EQ(stats.users, 3u);
  EXPECT_EQ(stats.users_without_test, 2u);
  EXPECT_EQ(stats.duplicates_merged, 1u);
}

TEST(SplitTest, ValidationTakesSecondLatest) {
  const Dataset data = DataOf({{1, 10, 1}, {1, 20, 2}, {1, 30, 3}, {1, 40, 4}});
  const std::vector<UserHistory> with = LeaveOneOutSplit(data, true, nullptr);
  ASSERT_EQ(with.size(), 1u);
  EXPECT_EQ(with[0].test_item, 40u);
  EXPECT_TRUE(with[0].has_valid);
  EXPECT_EQ(with[0].valid_item, 30u);
  EXPECT_EQ(with[0].train, (Items{10, 20}));
  EXPECT_EQ(with[0].positives, (Items{10, 20, 30, 40}));
  const std::vector<UserHistory> without = LeaveOneOutSplit(data, false, nullptr);
  EXPECT_FALSE(without[0].has_valid);
  EXPECT_EQ(without[0].train, (Items{10, 20, 30}));
}

TEST(SplitTest, GivenTestItems) {
  Dataset data = DataOf({{1, 10, 1}, {1, 20, 2}, {1, 30, 3}, {2, 5, 1}, {2, 6, 2}, {4, 8, 1}});
  data.has_given_test = true;
  data.test_item = {{1, 10}, {2, 99}, {3, 7}};  // 10: removed from training; 99: unseen; 3: no rows
  SplitStats stats;
  const std::vector<UserHistory> users = LeaveOneOutSplit(data, true, &stats);
  ASSERT_EQ(users.size(), 4u);
  EXPECT_EQ(users[0].test_item, 10u);
  EXPECT_EQ(users[0].valid_item, 30u);
  EXPECT_EQ(users[0].train, (Items{20}));
  EXPECT_EQ(users[1].test_item, 99u);
  EXPECT_EQ(users[1].valid_item, 6u);
  EXPECT_EQ(users[1].train, (Items{5}));
  EXPECT_EQ(users[1].positives, (Items{5, 6, 99}));
  EXPECT_EQ(users[2].user, 3u);
  EXPECT_TRUE(users[2].has_test);
  EXPECT_EQ(users[2].test_item, 7u);
  EXPECT_TRUE(users[2].train.empty());
  EXPECT_EQ(users[2].positives, (Items{7}));
  EXPECT_EQ(users[3].user, 4u);  // rows but no given test item: not evaluated
  EXPECT_FALSE(users[3].has_test);
  EXPECT_EQ(users[3].train, (Items{8}));
  EXPECT_EQ(stats.users, 4u);
  EXPECT_EQ(stats.users_without_test, 1u);
}

// ---------------------------------------------------------------------------
// Sampler

Items Range(std::uint64_t begin, std::uint64_t end) {
  Items items;
  for (std::uint64_t i = begin; i < end; ++i) items.push_back(i);
  return items;
}

TEST(SamplerTest, NeverReturnsAPositiveAndCoversTheRest) {
  const NegativeSampler sampler(Range(0, 100));
  const Items positives = {0, 3, 5, 50, 51, 52, 99, 1000};  // 1000 lies outside the universe
  SplitMix64 rng(42);
  std::map<std::uint64_t, int> counts;
  for (int i = 0; i < 20000; ++i) {
    const std::uint64_t item = sampler.Sample(rng, positives);
    ASSERT_FALSE(std::binary_search(positives.begin(), positives.end(), item)) << item;
    ASSERT_LT(item, 100u);
    ++counts[item];
  }
  EXPECT_EQ(counts.size(), 93u);
  for (const auto& entry : counts) EXPECT_GT(entry.second, 100) << entry.first;  // ~215 each
}

TEST(SamplerTest, FallsBackWhenTheUserSawAlmostEverything) {
  const NegativeSampler sampler(Range(0, 5000));
  Items positives = Range(0, 5000);
  positives.erase(std::remove_if(positives.begin(), positives.end(),
                                 [](std::uint64_t i) { return i == 17 || i == 2500 || i == 4999; }),
                  positives.end());
  SplitMix64 rng(7);
  std::set<std::uint64_t> seen;
  for (int i = 0; i < 300; ++i) seen.insert(sampler.Sample(rng, positives));
  EXPECT_EQ(seen, (std::set<std::uint64_t>{17, 2500, 4999}));
}

TEST(SamplerTest, ThrowsWhenEverythingWasSeen) {
  const NegativeSampler sampler(Range(0, 10));
  SplitMix64 rng(1);
  const std::string message = ErrorOf([&] { sampler.Sample(rng, Range(0, 10)); });
  EXPECT_NE(message.find("all 10 items"), std::string::npos) << message;
}

TEST(SamplerTest, EvalCandidatesDependOnSeedAndUserOnly) {
  const NegativeSampler sampler(Range(0, 1000));
  const Items positives = {1, 2, 3};
  const Items first = SampleEvalCandidates(sampler, 9, 42, positives, 99);
  // Other users drawn before, in any order, change nothing.
  for (std::uint64_t other = 0; other < 40; ++other) SampleEvalCandidates(sampler, 9, other, {other}, 99);
  EXPECT_EQ(SampleEvalCandidates(sampler, 9, 42, positives, 99), first);
  EXPECT_NE(SampleEvalCandidates(sampler, 10, 42, positives, 99), first);
  EXPECT_NE(SampleEvalCandidates(sampler, 9, 43, positives, 99), first);

  ASSERT_EQ(first.size(), 99u);
  EXPECT_EQ(std::set<std::uint64_t>(first.begin(), first.end()).size(), 99u);
  for (const std::uint64_t item : first) {
    EXPECT_FALSE(std::binary_search(positives.begin(), positives.end(), item));
    EXPECT_LT(item, 1000u);
  }
}

TEST(SamplerTest, EvalCandidatesWhenFewItemsAreLeft) {
  const NegativeSampler sampler(Range(0, 200));
  const Items positives = Range(0, 101);  // 99 left: every one is a candidate
  const Items candidates = SampleEvalCandidates(sampler, 1, 5, positives, 99);
  const Items left = Range(101, 200);
  EXPECT_EQ(std::set<std::uint64_t>(candidates.begin(), candidates.end()),
            std::set<std::uint64_t>(left.begin(), left.end()));
  EXPECT_EQ(SampleEvalCandidates(sampler, 1, 5, positives, 99), candidates);

  const std::string message = ErrorOf([&] { SampleEvalCandidates(sampler, 1, 5, Range(0, 102), 99); });
  EXPECT_NE(message.find("user 5"), std::string::npos) << message;
  EXPECT_NE(message.find("102 of the 200 items"), std::string::npos) << message;
  EXPECT_NE(message.find("only 98"), std::string::npos) << message;
}

TEST(SamplerTest, ManyEvalCandidatesAreDistinct) {
  const NegativeSampler sampler(Range(0, 5000));
  const Items candidates = SampleEvalCandidates(sampler, 3, 8, {10, 20}, 1000);
  EXPECT_EQ(std::set<std::uint64_t>(candidates.begin(), candidates.end()).size(), 1000u);
}

// ---------------------------------------------------------------------------
// Synthetic generator

SyntheticOptions SmallSynthetic() {
  SyntheticOptions options;
  options.users = 500;
  options.items = 300;
  options.interactions_per_user = 20;
  options.seed = 11;
  return options;
}

TEST(SyntheticTest, DeterministicPerUser) {
  const SyntheticGenerator a(SmallSynthetic());
  const SyntheticGenerator b(SmallSynthetic());
  // Order of generation does not matter.
  const std::vector<Interaction> late = a.GenerateUser(123);
  for (std::uint64_t user = 0; user < 10; ++user) b.GenerateUser(user);
  const std::vector<Interaction> again = b.GenerateUser(123);
  ASSERT_EQ(late.size(), again.size());
  for (std::size_t i = 0; i < late.size(); ++i) {
    EXPECT_EQ(late[i].item, again[i].item);
    EXPECT_EQ(late[i].ts, again[i].ts);
  }
  SyntheticOptions other_seed = SmallSynthetic();
  other_seed.seed = 12;
  const std::vector<Interaction> different = SyntheticGenerator(other_seed).GenerateUser(123);
  bool any_difference = false;
  for (std::size_t i = 0; i < late.size(); ++i) any_difference |= late[i].item != different[i].item;
  EXPECT_TRUE(any_difference);
}

TEST(SyntheticTest, HistoriesAreDistinctItemsInRange) {
  const SyntheticGenerator generator(SmallSynthetic());
  for (std::uint64_t user = 0; user < 500; user += 7) {
    const std::vector<Interaction> history = generator.GenerateUser(user);
    ASSERT_EQ(history.size(), 20u);
    std::set<std::uint64_t> items;
    for (std::size_t i = 0; i < history.size(); ++i) {
      EXPECT_EQ(history[i].user, user);
      EXPECT_EQ(history[i].ts, static_cast<std::int64_t>(i));
      EXPECT_LT(history[i].item, 300u);
      items.insert(history[i].item);
    }
    EXPECT_EQ(items.size(), 20u);
  }
}

TEST(SyntheticTest, EveryItemWhenUsersWantThemAll) {
  SyntheticOptions options = SmallSynthetic();
  options.items = 60;
  options.interactions_per_user = 60;
  const std::vector<Interaction> history = SyntheticGenerator(options).GenerateUser(3);
  std::set<std::uint64_t> items;
  for (const Interaction& x : history) items.insert(x.item);
  EXPECT_EQ(items.size(), 60u);
}

TEST(SyntheticTest, RejectsBadOptions) {
  SyntheticOptions options = SmallSynthetic();
  options.interactions_per_user = 1;
  EXPECT_THROW(SyntheticGenerator{options}, InputError);
  options.interactions_per_user = 301;
  EXPECT_THROW(SyntheticGenerator{options}, InputError);
  options = SmallSynthetic();
  options.items = 0;
  EXPECT_THROW(SyntheticGenerator{options}, InputError);
  options = SmallSynthetic();
  options.users = 0;
  EXPECT_THROW(SyntheticGenerator{options}, InputError);
}

TEST(SyntheticTest, PopularityIsSkewedAndShuffled) {
  const SyntheticGenerator generator(SmallSynthetic());
  std::vector<int> counts(300, 0);
  for (std::uint64_t user = 0; user < 500; ++user) {
    for (const Interaction& x : generator.GenerateUser(user)) ++counts[x.item];
  }
  std::vector<std::uint64_t> by_count = Range(0, 300);
  std::sort(by_count.begin(), by_count.end(), [&](std::uint64_t a, std::uint64_t b) { return counts[a] > counts[b]; });
  int top = 0;
  for (int i = 0; i < 30; ++i) top += counts[by_count[i]];
  EXPECT_GT(top, 500 * 20 * 25 / 100);  // the top 10% of items take well over 10%
  // The popular items are not simply the lowest ids.
  const std::uint64_t max_top_id = *std::max_element(by_count.begin(), by_count.begin() + 10);
  EXPECT_GT(max_top_id, 30u);
}

// A plain BPR matrix factorisation must beat popularity by a wide margin on
// sampled HR@10: the planted structure is learnable.
void ExpectPlantedStructureBeatsPopularity(const SyntheticOptions& options) {
  const SyntheticGenerator generator(options);
  Dataset data;
  for (std::uint64_t user = 0; user < options.users; ++user) {
    const std::vector<Interaction> history = generator.GenerateUser(user);
    data.interactions.insert(data.interactions.end(), history.begin(), history.end());
  }
  const std::vector<UserHistory> users = LeaveOneOutSplit(data, false, nullptr);
  const NegativeSampler sampler(Range(0, options.items));

  constexpr int kDim = 16;
  std::vector<double> popularity(options.items, 0.0);
  for (const UserHistory& u : users) {
    for (const std::uint64_t i : u.train) popularity[i] += 1;
  }
  SplitMix64 rng(5);
  std::vector<double> user_factors(users.size() * kDim), item_factors(options.items * kDim);
  for (double& x : user_factors) x = (rng.NextDouble() - 0.5) * 0.1;
  for (double& x : item_factors) x = (rng.NextDouble() - 0.5) * 0.1;
  const double lr = 0.05, reg = 0.001;
  // Negatives avoid the training positives only, as the worker does: the
  // held-out item must not be known to training.
  std::vector<Items> train_sorted(users.size());
  for (std::size_t u = 0; u < users.size(); ++u) {
    train_sorted[u] = users[u].train;
    std::sort(train_sorted[u].begin(), train_sorted[u].end());
  }
  for (int epoch = 0; epoch < 30; ++epoch) {
    for (std::size_t u = 0; u < users.size(); ++u) {
      for (const std::uint64_t pos : users[u].train) {
        const std::uint64_t neg = sampler.Sample(rng, train_sorted[u]);
        double* pu = &user_factors[u * kDim];
        double* qp = &item_factors[pos * kDim];
        double* qn = &item_factors[neg * kDim];
        double x = 0;
        for (int k = 0; k < kDim; ++k) x += pu[k] * (qp[k] - qn[k]);
        const double g = 1.0 / (1.0 + std::exp(x));
        for (int k = 0; k < kDim; ++k) {
          const double uk = pu[k];
          pu[k] += lr * (g * (qp[k] - qn[k]) - reg * uk);
          qp[k] += lr * (g * uk - reg * qp[k]);
          qn[k] += lr * (-g * uk - reg * qn[k]);
        }
      }
    }
  }
  int mf_hits = 0, popularity_hits = 0, evaluated = 0;
  for (std::size_t u = 0; u < users.size(); ++u) {
    ASSERT_TRUE(users[u].has_test);
    auto score = [&](std::uint64_t item) {
      double s = 0;
      for (int k = 0; k < kDim; ++k) s += user_factors[u * kDim + k] * item_factors[item * kDim + k];
      return s;
    };
    const std::uint64_t test = users[u].test_item;
    int mf_rank = 0, popularity_rank = 0;
    for (const std::uint64_t c : SampleEvalCandidates(sampler, 1, users[u].user, users[u].positives, 99)) {
      mf_rank += score(c) > score(test);
      popularity_rank += popularity[c] > popularity[test];
    }
    mf_hits += mf_rank < 10;
    popularity_hits += popularity_rank < 10;
    ++evaluated;
  }
  const double mf_hr = static_cast<double>(mf_hits) / evaluated;
  const double popularity_hr = static_cast<double>(popularity_hits) / evaluated;
  EXPECT_GT(mf_hr, popularity_hr + 0.15) << "MF HR@10 " << mf_hr << ", popularity HR@10 " << popularity_hr;
}

TEST(SyntheticTest, PlantedStructureBeatsPopularity) { ExpectPlantedStructureBeatsPopularity(SmallSynthetic()); }

// The streaming generator keeps the planted structure (the same item
// factors, popularity by rejection-inversion over a Feistel permutation).
TEST(SyntheticTest, PlantedStructureBeatsPopularityWhenStreaming) {
  SyntheticOptions options = SmallSynthetic();
  options.table_items_max = 0;
  ASSERT_TRUE(SyntheticGenerator(options).streaming());
  ExpectPlantedStructureBeatsPopularity(options);
}

// ---------------------------------------------------------------------------
// The real MovieLens 100k, when it is there.

TEST(DataMl100k, RealFiles) {
  const std::string dir = RECSYS_ML100K_DIR;
  struct stat st;
  if (::stat((dir + "/u.data").c_str(), &st) != 0) {
    GTEST_SKIP() << "MovieLens 100k not found at " << dir << " (run launch/download_movielens.sh to get it)";
  }
  DataOptions options;
  options.format = "ml-100k";
  options.path = dir;
  const Dataset data = ReadDataset(options, KeepAll);
  EXPECT_EQ(data.interactions.size(), 100000u);
  EXPECT_EQ(data.num_users(), 943u);
  EXPECT_EQ(data.items.size(), 1682u);
  EXPECT_EQ(data.user_features.size(), 943u);
  EXPECT_EQ(data.item_slot_fields.size(), 6u);  // at most 6 genres per movie
  // User 1: 24, M, technician (line 20 of u.occupation).
  const std::vector<Feature> user1 = FeaturesOf(data.user_features, 1);
  ASSERT_EQ(user1.size(), 3u);
  EXPECT_EQ(user1[0].key, MakeKey(kFieldAge, 1));
  EXPECT_EQ(user1[1].key, MakeKey(kFieldGender, 0));
  EXPECT_EQ(user1[2].key, MakeKey(kFieldOccupation, 19));

  SplitStats stats;
  const std::vector<UserHistory> users = LeaveOneOutSplit(data, true, &stats);
  EXPECT_EQ(users.size(), 943u);
  EXPECT_EQ(stats.users_without_test, 0u);
  EXPECT_EQ(stats.duplicates_merged, 0u);
  for (const UserHistory& u : users) {
    EXPECT_TRUE(u.has_test);
    EXPECT_TRUE(u.has_valid);  // every ml-100k user has at least 20 ratings
    EXPECT_GE(u.train.size(), 18u);
  }
}

}  // namespace
}  // namespace recsys
