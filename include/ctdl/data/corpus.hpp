#pragma once
// Text for pretraining: a generated corpus that needs no download, and a checked reader
// for a user's own UTF-8 file.
//
//   std::string text = ctdl::data::default_corpus();            // 200 000 bytes of short stories
//   std::string mine = ctdl::data::read_text_file("book.txt");  // ctdl::error if missing/empty/not UTF-8
//
// default_corpus(bytes, seed) writes short children's stories from a small grammar, with
// the structure a small character-level GPT can pick up in minutes:
//   - words and spelling from fixed lists (names, animals, objects, adjectives, verbs);
//   - agreement: "a"/"an" before vowels, singular/plural nouns ("one fox", "three foxes",
//     "two mice"), "was"/"were" and "walks"/"walk" with the subject, "she"/"he" and
//     "her"/"his" with the hero;
//   - repetition at a distance: each story picks a hero, a friend, a pet and an object,
//     names them in its title line and opening, and refers back to them throughout;
//   - layout: a title line, sentences, "The end." and a blank line between stories.
// The text is ASCII and a pure function of (bytes, seed) on every platform (it draws from
// ctdl::rng, never from <random>'s distributions); default_corpus(n) is a prefix of
// default_corpus(m) for n <= m, and is exactly n bytes long.
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

#include "../core/error.hpp"
#include "../core/random.hpp"
#include "../io/file_io.hpp"
#include "utf8.hpp"

namespace ctdl::data {

namespace detail {

struct noun {
    std::string_view one, many;
};

/// Writes one story at a time into out.
class story_writer {
public:
    story_writer(std::string& out, std::uint64_t seed) : out_(out), g_(ctdl::seed{seed}, 0x73746F7279 /* "story" */) {}

    void story() {
        static constexpr std::array<std::string_view, 8> girls{"Mara", "Lina", "Ada", "Ivy", "Rosa", "Nell", "Tess", "Elsa"};
        static constexpr std::array<std::string_view, 8> boys{"Tom", "Otto", "Ben", "Nils", "Sam", "Finn", "Leo", "Hugo"};
        static constexpr std::array<noun, 8> animals{{{"cat", "cats"}, {"dog", "dogs"}, {"fox", "foxes"}, {"owl", "owls"},
                                                      {"horse", "horses"}, {"duck", "ducks"}, {"mouse", "mice"},
                                                      {"sheep", "sheep"}}};
        static constexpr std::array<std::string_view, 6> pet_names{"Pip", "Rex", "Moss", "Bell", "Dot", "Pepper"};
        static constexpr std::array<noun, 10> objects{{{"ball", "balls"}, {"box", "boxes"}, {"kite", "kites"},
                                                       {"apple", "apples"}, {"hat", "hats"}, {"book", "books"},
                                                       {"cake", "cakes"}, {"key", "keys"}, {"boat", "boats"},
                                                       {"umbrella", "umbrellas"}}};
        static constexpr std::array<std::string_view, 10> colours{"red", "blue", "green", "little", "big",
                                                                  "old", "shiny", "orange", "yellow", "tiny"};

        const bool girl = g_.next_below(2) == 0;
        hero_ = girl ? pick(girls) : pick(boys);
        do friend_ = g_.next_below(2) ? pick(girls) : pick(boys);
        while (friend_ == hero_);
        she_ = girl ? "she" : "he";
        her_ = girl ? "her" : "his";
        him_ = girl ? "her" : "him";
        pet_ = pick(animals);
        pet_name_ = pick(pet_names);
        thing_ = pick(objects);
        colour_ = pick(colours);

        // Title line: "The Shiny Kite" / "Mara and the Shiny Kite".
        if (g_.next_below(2)) put(hero_), put(" and the ");
        else put("The ");
        put_capitalized(colour_), put(" "), put_capitalized(thing_.one), put("\n");

        opening();
        sentence(0);  // the hero finds the thing of the title
        const std::size_t middle = 3 + g_.next_below(5);
        for (std::size_t i = 0; i < middle; ++i) sentence(1 + g_.next_below(8));
        ending();
        put("\n\n");
    }

private:
    template <class List>
    typename List::value_type pick(const List& list) {
        return list[static_cast<std::size_t>(g_.next_below(list.size()))];
    }

    void put(std::string_view s) { out_ += s; }
    void put_capitalized(std::string_view s) {
        if (s.empty()) return;
        out_ += static_cast<char>(s[0] >= 'a' && s[0] <= 'z' ? s[0] - 'a' + 'A' : s[0]);
        out_ += s.substr(1);
    }
    static bool vowel(std::string_view w) { return !w.empty() && std::string_view("aeiou").find(w[0]) != std::string_view::npos; }
    /// "a"/"an" by the sound of the next word (first letter here).
    void article(std::string_view next) { put(vowel(next) ? "an " : "a "); }
    void sentence_start(std::string_view s) { put(" "), put_capitalized(s); }

    void opening() {
        static constexpr std::array<std::string_view, 5> places{"in a small house near the river", "in a village by the sea",
                                                                "on a farm behind the hill", "in a big city",
                                                                "at the edge of the old forest"};
        static constexpr std::array<std::string_view, 5> kinds{"kind", "brave", "curious", "quiet", "clever"};
        const std::string_view kind = pick(kinds);
        if (g_.next_below(2)) {
            put("Once upon a time, there was "), article(kind), put(kind), put(she_ == "she" ? " girl" : " boy");
            put(" named "), put(hero_), put(".");
        } else {
            put(hero_), put(" was "), article(kind), put(kind), put(she_ == "she" ? " girl" : " boy"), put(".");
        }
        sentence_start(she_), put(" lived "), put(pick(places)), put(" with "), put(her_), put(" "), put(pet_.one);
        put(", "), put(pet_name_), put(".");
    }

    void sentence(std::uint64_t kind) {
        static constexpr std::array<std::string_view, 7> feelings{"happy", "sad", "tired", "scared", "proud", "hungry", "surprised"};
        static constexpr std::array<std::string_view, 5> spots{"under the bed", "in the garden", "near the river",
                                                               "behind the door", "on the hill"};
        static constexpr std::array<std::string_view, 4> numbers{"two", "three", "four", "five"};
        static constexpr std::array<noun, 4> routines{{{"walks to the river", "walk to the river"},
                                                       {"sings a song", "sing a song"},
                                                       {"runs in the garden", "run in the garden"},
                                                       {"eats an apple", "eat an apple"}}};
        switch (kind) {
            case 0:  // "One day, Mara found a shiny kite under the bed."
                put(" One day, "), put(hero_), put(" found "), article(colour_), put(colour_), put(" "), put(thing_.one),
                    put(" "), put(pick(spots)), put(".");
                break;
            case 1:  // "She was very happy." / "Tom and Ada were happy."
                if (g_.next_below(2)) {
                    sentence_start(she_), put(" was very "), put(pick(feelings)), put(".");
                } else {
                    put(" "), put(hero_), put(" and "), put(friend_), put(" were "), put(pick(feelings)), put(".");
                }
                break;
            case 2:  // "Mara showed the kite to Tom. Tom said, "What a nice kite!""
                put(" "), put(hero_), put(" showed the "), put(thing_.one), put(" to "), put(friend_), put(".");
                put(" "), put(friend_), put(" said, \"");
                switch (g_.next_below(3)) {
                    case 0: put("What a nice "), put(thing_.one), put("!\""); break;
                    case 1: put("Can I play with it, "), put(hero_), put("?\""); break;
                    default: put("I like your "), put(colour_), put(" "), put(thing_.one), put(".\""); break;
                }
                break;
            case 3: {  // "The fox was hungry." / "The foxes were hungry."
                const noun a = pick(animals_seen());
                if (g_.next_below(2)) put(" The "), put(a.one), put(" was ");
                else put(" The "), put(a.many), put(" were ");
                put(pick(feelings)), put(".");
                break;
            }
            case 4: {  // "Every morning, Pip walks to the river." / "... the ducks walk to the river."
                const noun r = pick(routines);
                put(" Every morning, ");
                if (g_.next_below(2)) put(pet_name_), put(" "), put(r.one);
                else put(hero_), put(" and "), put(friend_), put(" "), put(r.many);
                put(".");
                break;
            }
            case 5: {  // "On the hill, Ben saw one owl." / "... saw three owls." / "... saw two mice."
                const noun a = pick(animals_seen());
                put(" "), put_capitalized(pick(spots)), put(", "), put(hero_), put(" saw ");
                if (g_.next_below(3) == 0) put("one "), put(a.one);
                else put(pick(numbers)), put(" "), put(a.many);
                put(".");
                break;
            }
            case 6:  // "Then Pip ran away with the kite!"
                put(" Then "), put(pet_name_), put(" the "), put(pet_.one), put(" ran away with the "), put(thing_.one),
                    put("!");
                break;
            case 7:  // "Tom looked for his kite everywhere."
                put(" "), put(hero_), put(" looked for "), put(her_), put(" "), put(thing_.one), put(" everywhere.");
                break;
            default:  // "Ada gave him a cake."
            {
                const noun o = pick(objects_all());
                put(" "), put(friend_), put(" gave "), put(him_), put(" "), article(o.one), put(o.one), put(".");
                break;
            }
        }
    }

    void ending() {
        switch (g_.next_below(3)) {
            case 0:
                put(" In the end, "), put(hero_), put(" and "), put(friend_), put(" went home together.");
                break;
            case 1:
                put(" In the end, "), put(hero_), put(" found the "), put(thing_.one), put(" and "), put(she_),
                    put(" was happy again.");
                break;
            default:
                put(" In the end, "), put(pet_name_), put(" slept next to the "), put(thing_.one), put(".");
                break;
        }
        put(" The end.");
    }

    static std::span<const noun> animals_seen() {
        static constexpr std::array<noun, 5> a{{{"fox", "foxes"}, {"owl", "owls"}, {"duck", "ducks"}, {"mouse", "mice"},
                                                {"sheep", "sheep"}}};
        return a;
    }
    static std::span<const noun> objects_all() {
        static constexpr std::array<noun, 5> o{{{"apple", "apples"}, {"cake", "cakes"}, {"hat", "hats"},
                                                {"egg", "eggs"}, {"orange", "oranges"}}};
        return o;
    }

    std::string& out_;
    rng g_;
    std::string_view hero_, friend_, she_, her_, him_, pet_name_, colour_;
    noun pet_, thing_;
};

}  // namespace detail

/// Exactly `bytes` bytes of generated stories (ASCII, newlines between lines; see the
/// header comment). The same (bytes, seed) gives the same text everywhere.
inline std::string default_corpus(std::size_t bytes = 200'000, std::uint64_t seed = 2024) {
    std::string text;
    text.reserve(bytes + 2048);
    detail::story_writer w(text, seed);
    while (text.size() < bytes) w.story();
    text.resize(bytes);
    return text;
}

/// The content of a UTF-8 text file (a leading byte-order mark is dropped). ctdl::error
/// naming the file if it is missing, unreadable, a directory, empty, or not valid UTF-8
/// (with the byte offset of the first bad byte).
inline std::string read_text_file(const std::filesystem::path& path) {
    const std::vector<std::byte> bytes = ctdl::detail::read_file(path);
    std::string text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    if (text.starts_with("\xEF\xBB\xBF")) text.erase(0, 3);
    if (text.empty()) throw error("read_text_file: '" + path.string() + "' is empty; expected UTF-8 text");
    utf8_check(text, "read_text_file: '" + path.string() + "'");
    return text;
}

}  // namespace ctdl::data
