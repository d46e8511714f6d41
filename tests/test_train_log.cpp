#include <catch2/catch.hpp>
#include <ctdl/train/log.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "temp_dir.hpp"

using namespace ctdl::train;
using Catch::Matchers::Contains;

namespace {

using ctdl_test::temp_dir;

using ctdl_test::slurp;

std::vector<std::string> lines_of(const std::string& s) {
    std::vector<std::string> out;
    std::istringstream in(s);
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
}

/// Every `<tag ...>` element's attribute `name`, in order.
std::vector<std::string> attributes(const std::string& svg, const std::string& tag, const std::string& name) {
    std::vector<std::string> out;
    for (std::size_t p = 0; (p = svg.find("<" + tag + " ", p)) != std::string::npos; ++p) {
        const std::size_t end = svg.find('>', p);
        const std::string element = svg.substr(p, end - p);
        const std::size_t a = element.find(" " + name + "=\"");
        REQUIRE(a != std::string::npos);
        const std::size_t v = a + name.size() + 3;
        out.push_back(element.substr(v, element.find('"', v) - v));
    }
    return out;
}

/// "x,y x,y ..." -> pairs, checking each is two numbers.
std::vector<std::pair<double, double>> parse_points(const std::string& points) {
    std::vector<std::pair<double, double>> out;
    std::istringstream in(points);
    for (std::string pair; in >> pair;) {
        const std::size_t comma = pair.find(',');
        REQUIRE(comma != std::string::npos);
        out.emplace_back(std::stod(pair.substr(0, comma)), std::stod(pair.substr(comma + 1)));
    }
    return out;
}

}  // namespace

// ---------------------------------------------------------------- formatting

TEST_CASE("log: durations, rates and numbers", "[train][log]") {
    CHECK(format_duration(0) == "0s");
    CHECK(format_duration(42.4) == "42s");
    CHECK(format_duration(245) == "4m05s");
    CHECK(format_duration(3720) == "1h02m");
    CHECK(format_duration(3 * 86400 + 4 * 3600) == "3d04h");
    CHECK(format_duration(std::nan("")) == "?");
    CHECK(format_rate(950) == "950");
    CHECK(format_rate(12345) == "12.3k");
    CHECK(format_rate(1250000) == "1.25M");
    CHECK(format_rate(999.7) == "1.00k");
    CHECK(format_number(0.1) == "0.1");
    CHECK(format_number(3e-4) == "3e-04");  // the shortest form that reads back exactly
    CHECK(format_number(2.5) == "2.5");
}

// ---------------------------------------------------------------- progress

TEST_CASE("progress: plain lines every N steps, first, last and with validation loss", "[train][log]") {
    std::ostringstream out;
    progress p(out, false, 100, 1000, {.every = 25});
    for (std::size_t step = 1; step <= 100; ++step) {
        std::optional<double> val;
        if (step == 60) val = 2.25;
        p.update(step, 3.0 - 0.01 * static_cast<double>(step), val, 0.5 * static_cast<double>(step));
    }
    p.finish();
    const auto lines = lines_of(out.str());
    REQUIRE(lines.size() == 6);  // steps 1, 25, 50, 60 (val), 75, 100
    CHECK(lines[0] == "step 1/100 | loss 2.9900 | 2.00k tok/s | 1s elapsed | eta 50s");
    CHECK(lines[1] == "step 25/100 | loss 2.7500 | 2.00k tok/s | 13s elapsed | eta 38s");
    CHECK(lines[3] == "step 60/100 | loss 2.4000 | val 2.2500 | 2.00k tok/s | 30s elapsed | eta 20s");
    CHECK(lines[4].find("val") == std::string::npos);  // the validation loss shows where it was measured
    CHECK(lines[5] == "step 100/100 | loss 2.0000 | 2.00k tok/s | 50s elapsed | eta 0s");
    CHECK(out.str().find('\r') == std::string::npos);
    CHECK(p.tokens_per_second() == Approx(2000));
    CHECK(p.elapsed_seconds() == Approx(50));
}

TEST_CASE("progress: resumed runs count rates from the start step", "[train][log]") {
    std::ostringstream out;
    progress p(out, false, 1000, 64, {.every = 100, .start_step = 500});
    p.update(501, 1.5, std::nullopt, 2.0);
    CHECK(p.tokens_per_second() == Approx(32));
    CHECK(p.eta_seconds() == Approx(998));
    CHECK(out.str() == "step 501/1000 | loss 1.5000 | 32 tok/s | 2s elapsed | eta 16m38s\n");
    CHECK_THROWS_AS(progress(out, false, 10, 1, {.start_step = 11}), ctdl::error);
    CHECK_THROWS_AS(progress(out, false, 0, 1), ctdl::error);
    CHECK_THROWS_AS(progress(out, false, 10, 1, {.every = 0}), ctdl::error);
}

TEST_CASE("progress: terminal mode redraws one line with a bar", "[train][log]") {
    std::ostringstream out;
    {
        progress p(out, true, 10, 100, {.bar_width = 10, .redraw_seconds = 1.0});
        p.update(1, 2.0, std::nullopt, 0.1);   // drawn (first)
        p.update(2, 1.9, std::nullopt, 0.5);   // throttled
        p.update(5, 1.5, 1.7, 1.2);            // drawn
        p.message("saved checkpoint");
        p.update(10, 1.0, std::nullopt, 2.0);  // drawn (last)
        p.finish();
    }
    const std::string s = out.str();
    CHECK(s.starts_with("\r[=>        ]  10% step 1/10 | loss 2.0000"));
    CHECK(s.find("step 2/10") == std::string::npos);
    CHECK_THAT(s, Contains("\r[=====>    ]  50% step 5/10 | loss 1.5000 | val 1.7000"));
    CHECK_THAT(s, Contains("\r\x1b[Ksaved checkpoint\n[=====>    ]"));
    CHECK_THAT(s, Contains("\r[==========] 100% step 10/10 | loss 1.0000 | val 1.7000 | 500 tok/s"));
    CHECK(s.ends_with("\x1b[K\n"));
    CHECK(std::count(s.begin(), s.end(), '\n') == 2);  // the message and the final newline
}

// ---------------------------------------------------------------- csv_log

TEST_CASE("csv_log: header once, one flushed row per call, empty val_loss", "[train][log]") {
    const temp_dir dir;
    const auto path = dir.path / "log.csv";
    {
        csv_log log(path);
        log.row(1, 5.5, std::nullopt, 3e-4, 12000.5, 0.25);
        CHECK(slurp(path) == "step,train_loss,val_loss,lr,tokens_per_s,seconds\n1,5.5,,3e-04,12000.5,0.25\n");  // flushed
        log.row(100, 2.25, 2.5, 0.0001, 15000, 30);
    }
    CHECK(slurp(path) ==
          "step,train_loss,val_loss,lr,tokens_per_s,seconds\n"
          "1,5.5,,3e-04,12000.5,0.25\n"
          "100,2.25,2.5,1e-04,15000,30\n");

    // Append (resume): no second header; a row cut off by a crash is dropped first.
    { std::ofstream(path, std::ios::app) << "150,2.1"; }
    {
        csv_log log(path);
        log.row(200, 2.0, 2.125, 0.0001, 15000, 60);
    }
    const auto lines = lines_of(slurp(path));
    REQUIRE(lines.size() == 4);
    CHECK(lines[0] == csv_log::header);
    CHECK(lines[3] == "200,2,2.125,1e-04,15000,60");

    // Truncate: a fresh log.
    {
        csv_log log(path, csv_log::mode::truncate);
        log.row(1, 1.0, std::nullopt, 0.1, 1, 1);
    }
    CHECK(lines_of(slurp(path)).size() == 2);

    // Someone else's file is not appended to.
    const auto other = dir.path / "other.csv";
    { std::ofstream(other) << "a,b,c\n1,2,3\n"; }
    CHECK_THROWS_WITH(csv_log(other), Contains(other.string()) && Contains("expected the header"));
    CHECK_THROWS_WITH(csv_log(dir.path / "no_such_dir" / "log.csv"), Contains("no_such_dir"));
}

TEST_CASE("staged_csv_log: nothing reaches the file before commit, and resuming keeps rows up to the checkpoint",
          "[train][log]") {
    const temp_dir dir;
    const auto path = dir.path / "log.csv";
    const std::string earlier = std::string(csv_log::header) + "\n1,5.5,,3e-04,12000.5,0.25\n2,5,,3e-04,12000.5,0.5\n";
    { std::ofstream(path, std::ios::binary) << earlier; }

    {  // a new log (truncate): the earlier one stays until the first commit, then is replaced whole
        staged_csv_log log(path, csv_log::mode::truncate);
        log.row(1, 4.5, std::nullopt, 0.001, 100, 1);
        log.row(2, 4.25, 4.5, 0.001, 100, 2);
        CHECK(slurp(path) == earlier);
        CHECK(log.text() == std::string(csv_log::header) + "\n1,4.5,,0.001,100,1\n2,4.25,4.5,0.001,100,2\n");
        log.commit();
        CHECK(slurp(path) == log.text());
        log.row(3, 4, std::nullopt, 0.001, 100, 3);  // dropped: never committed
    }
    CHECK(lines_of(slurp(path)).size() == 3);
    std::size_t files = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path)) ++files;
    CHECK(files == 1);  // no temporary left behind

    // append, resuming at step 2: rows past it and a row cut off by a crash are dropped
    { std::ofstream(path, std::ios::app) << "3,4,,0.001,100,3\n4,3.5,,0.001,100,4\n5,3.2"; }
    {
        staged_csv_log log(path, csv_log::mode::append, 2);
        CHECK(log.text() == std::string(csv_log::header) + "\n1,4.5,,0.001,100,1\n2,4.25,4.5,0.001,100,2\n");
        log.row(3, 3.75, std::nullopt, 0.001, 100, 3);
        log.commit();
    }
    const auto lines = lines_of(slurp(path));
    REQUIRE(lines.size() == 4);
    CHECK(lines[3] == "3,3.75,,0.001,100,3");
    // without a step to keep through, every complete row is kept
    { std::ofstream(path, std::ios::app) << "9,1,,0.001,100,9\n10,1"; }
    CHECK(lines_of(staged_csv_log(path).text()).size() == 5);

    // a missing or empty file starts a new log; someone else's file is refused at once
    CHECK(staged_csv_log(dir.path / "new.csv", csv_log::mode::append, 7).text() == std::string(csv_log::header) + "\n");
    const auto other = dir.path / "other.csv";
    { std::ofstream(other) << "a,b,c\n1,2,3\n"; }
    CHECK_THROWS_WITH(staged_csv_log(other, csv_log::mode::append, 3), Contains(other.string()) && Contains("expected the header"));
    CHECK(slurp(other) == "a,b,c\n1,2,3\n");
    // a commit into a folder that does not exist fails and names the file
    staged_csv_log lost(dir.path / "no_such_dir" / "log.csv", csv_log::mode::truncate);
    CHECK_THROWS_WITH(lost.commit(), Contains("no_such_dir"));
    // csv_log writes the same rows as staged_csv_log
    CHECK(csv_row(100, 2.25, 2.5, 0.0001, 15000, 30) == "100,2.25,2.5,1e-04,15000,30\n");
}

// ---------------------------------------------------------------- loss plot

TEST_CASE("loss plot: a well-formed SVG with two curves, axes, legend and title", "[train][log]") {
    std::vector<loss_point> train, val;
    for (int s = 1; s <= 500; ++s) train.push_back({double(s), 1.2 + 4.3 * std::exp(-s / 80.0) + 0.05 * std::sin(s)});
    for (int s = 50; s <= 500; s += 50) val.push_back({double(s), 1.35 + 4.0 * std::exp(-s / 90.0)});

    const temp_dir dir;
    const auto path = dir.path / "loss.svg";
    write_loss_plot_svg(path, train, val, "GPT <stories> & loss");
    const std::string svg = slurp(path);
    CHECK(svg == loss_plot_svg(train, val, "GPT <stories> & loss"));
    for (const auto& e : std::filesystem::directory_iterator(dir.path))  // no temporary left behind
        CHECK(e.path().filename() == "loss.svg");

    CHECK(svg.starts_with("<svg "));
    CHECK_THAT(svg, Contains("xmlns=\"http://www.w3.org/2000/svg\""));
    CHECK(svg.ends_with("</svg>\n"));
    CHECK(std::count(svg.begin(), svg.end(), '<') == std::count(svg.begin(), svg.end(), '>'));
    // Every element opened is closed: <g> balanced, and every other element self-closing or paired with </text>.
    const auto count = [&](const std::string& needle) {
        std::size_t n = 0;
        for (std::size_t p = 0; (p = svg.find(needle, p)) != std::string::npos; ++p) ++n;
        return n;
    };
    CHECK(count("<g ") + count("<g>") == count("</g>"));
    CHECK(count("<text ") == count("</text>"));

    const auto polylines = attributes(svg, "polyline", "points");
    REQUIRE(polylines.size() == 2);
    const auto tp = parse_points(polylines[0]), vp = parse_points(polylines[1]);
    CHECK(tp.size() == train.size());
    CHECK(vp.size() == val.size());
    CHECK(attributes(svg, "polyline", "class") == std::vector<std::string>{"train", "validation"});
    // Inside the canvas, step increasing to the right, higher loss further up.
    for (const auto& [x, y] : tp) {
        CHECK(x >= 0);
        CHECK(x <= 800);
        CHECK(y >= 0);
        CHECK(y <= 500);
    }
    CHECK(tp.back().first > tp.front().first);
    CHECK(tp.back().second > tp.front().second);

    CHECK_THAT(svg, Contains(">step</text>"));
    CHECK_THAT(svg, Contains(">loss</text>"));
    CHECK_THAT(svg, Contains(">train</text>"));
    CHECK_THAT(svg, Contains(">validation</text>"));
    CHECK_THAT(svg, Contains(">GPT &lt;stories&gt; &amp; loss</text>"));
    CHECK_THAT(svg, Contains(">500</text>"));  // an x tick at the last step
    CHECK(count("text-anchor=\"end\">") >= 4);  // y tick labels
}

TEST_CASE("loss plot: one point, one curve, and NaN and empty input refused", "[train][log]") {
    const std::vector<loss_point> one{{10, 2.5}};
    const std::string svg = loss_plot_svg(one, {}, "t");
    const auto pl = attributes(svg, "polyline", "points");
    REQUIRE(pl.size() == 1);
    CHECK(parse_points(pl[0]).size() == 1);
    CHECK_THAT(svg, Contains("<circle "));  // a lone point is drawn as a dot
    CHECK(svg.find(">validation</text>") == std::string::npos);
    CHECK(svg.find("nan") == std::string::npos);
    CHECK(svg.find("inf") == std::string::npos);

    const std::string only_val = loss_plot_svg({}, one, "t");
    CHECK(attributes(only_val, "polyline", "class") == std::vector<std::string>{"validation"});

    const std::vector<loss_point> flat{{0, 1.0}, {1, 1.0}, {2, 1.0}};
    CHECK(loss_plot_svg(flat, {}, "t").find("nan") == std::string::npos);

    const std::vector<loss_point> bad{{1, 2.0}, {2, std::nan("")}};
    CHECK_THROWS_WITH(loss_plot_svg(bad, {}, "t"), Contains("training point 1") && Contains("finite"));
    const std::vector<loss_point> bad_step{{INFINITY, 2.0}};
    CHECK_THROWS_WITH(loss_plot_svg(one, bad_step, "t"), Contains("validation point 0"));
    CHECK_THROWS_WITH(loss_plot_svg({}, {}, "t"), Contains("empty"));

    const temp_dir dir;
    const auto path = dir.path / "bad.svg";
    CHECK_THROWS_AS(write_loss_plot_svg(path, bad, {}, "t"), ctdl::error);
    CHECK(!std::filesystem::exists(path));
}
