#include <catch2/catch.hpp>
#include <ctdl/exec/thread_pool.hpp>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

TEST_CASE("thread_pool runs each thread index exactly once per job") {
    for (std::size_t threads : {1, 2, 3, 5}) {
        ctdl::thread_pool pool(threads);
        CHECK(pool.size() == threads);
        for (int job = 0; job < 200; ++job) {
            std::vector<std::atomic<int>> hits(threads);
            pool.run([&](std::size_t t, std::size_t n) {
                CHECK(n == threads);
                hits[t].fetch_add(1);
            });
            for (auto& h : hits) REQUIRE(h.load() == 1);
        }
    }
}

TEST_CASE("thread_pool::split partitions a range into contiguous blocks") {
    for (std::size_t count : {0, 1, 7, 64, 1000})
        for (std::size_t n : {1, 2, 3, 8}) {
            std::size_t next = 0;
            for (std::size_t t = 0; t < n; ++t) {
                auto [b, e] = ctdl::thread_pool::split(count, t, n);
                CHECK(b == next);
                CHECK(e >= b);
                CHECK(e - b <= count / n + 1);
                next = e;
            }
            CHECK(next == count);
        }
}

TEST_CASE("thread_pool::parallel_for covers every index once") {
    ctdl::thread_pool pool(2);
    std::vector<int> seen(1001, 0);
    pool.parallel_for(seen.size(), [&](std::size_t b, std::size_t e) {
        for (std::size_t i = b; i < e; ++i) ++seen[i];
    });
    for (int s : seen) REQUIRE(s == 1);
}

TEST_CASE("thread_pool rethrows a task's exception and stays usable") {
    ctdl::thread_pool pool(2);
    CHECK_THROWS_AS(pool.run([](std::size_t t, std::size_t) {
        if (t == 1) throw std::runtime_error("boom");
    }), std::runtime_error);
    std::atomic<int> n{0};
    pool.run([&](std::size_t, std::size_t) { ++n; });
    CHECK(n == 2);
}

TEST_CASE("nested run executes serially on the calling thread") {
    ctdl::thread_pool pool(2);
    std::atomic<int> inner{0};
    pool.run([&](std::size_t, std::size_t) {
        pool.run([&](std::size_t t, std::size_t n) {
            CHECK(t == 0);
            CHECK(n == 1);
            ++inner;
        });
    });
    CHECK(inner == 2);
}

TEST_CASE("thread_pool resizes and refuses zero threads") {
    ctdl::thread_pool pool(1);
    pool.resize(3);
    CHECK(pool.size() == 3);
    std::atomic<int> n{0};
    pool.run([&](std::size_t, std::size_t) { ++n; });
    CHECK(n == 3);
    CHECK_THROWS_AS(pool.resize(0), ctdl::error);
    CHECK(pool.size() == 3);
}
