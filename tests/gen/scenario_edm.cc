// The exact data match (EDM) test data: a fake customer table, its schema, and captures that
// send parts of the table out (kEdmCases in scenarios.h says what each one must raise):
//
//   exfiltap-gen --scenario edm --out DIR/edm [--rows N]  ->  DIR/edm-customers.csv,
//       DIR/edm-customers.yaml and DIR/edm-<capture>.pcap for each capture of kEdmCases
//
// The table. Every field of a row is a pure function of the seed and the row number, so a
// capture can take any row without the table in memory. account_number is ten digits, never
// starting with 0, unique: a keyed permutation of the row number (a Feistel network over 34
// bits, walked until it lands in [0, 9e9)) plus 1e9. full_name is a first and a last name
// from the lists below (combinations repeat across rows). email is made of the name, the row
// number plus one (which makes it unique) and one of three example domains. street_address is
// "<number> <street name> <type>", city one of a list. The four word lists share no word, so
// a word of one column's value never reads as (part of) another column's value. Data row
// kEdmQuotedRow (0-based) has the street address "12 Elm Street, Apt 4", the only value with a
// comma: the CSV quotes it.
//
// The captures. An inside client in 10.20.0.0/16 sends one HTTP request to a server in
// 203.0.113.0/24, port 80, on a connection of its own (handshake, request, response, FIN):
// - csv50: POST text/csv, a header line and 50 full rows (kEdmQuotedRow among them, the
//   others from all over the table), in full-size segments.
// - reordered: the same request body (same 50 rows in the same order) in segments of 90 to
//   200 bytes (head included); segments 1 and 2, 4 and 5, 7 and 8, ... go out swapped and one
//   segment in the middle is lost after the tap and retransmitted, so the tap sees it twice.
// - names-only: POST text/csv of full_name, street_address and city of 50 other rows, no
//   account numbers.
// - mixed: POST text/csv of 50 lines with the five columns, where each line's account number,
//   name, e-mail, street address and city come from five different rows (250 rows, all
//   different); no value other than an account number belongs to a row whose account number
//   is in the capture (checked on every word sequence of the body, up to eight words).
// - json5: POST application/json, a pretty-printed array of 5 rows as objects whose keys come
//   in another order than the CSV columns (email, street_address, full_name, account_number,
//   city); account_number is a JSON number.
// - benign: GET of an HTML page of ordinary words and a POST of random words, two connections.

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tests/gen/capture.h"
#include "tests/gen/content.h"
#include "tests/gen/pcap_writer.h"
#include "tests/gen/scenario_common.h"
#include "tests/gen/scenarios.h"
#include "tests/gen/tcp_session.h"

namespace exfiltap::gen {
namespace {

// ---- word lists (no word in two lists; cities of at least four letters) ----

constexpr std::string_view kFirstNames[] = {"Aaron", "Abigail", "Adam", "Adele", "Adrian", "Agnes",
        "Ahmed", "Aida", "Alan", "Albert", "Alejandro", "Alexa", "Alexander", "Alfred", "Alice",
        "Alina", "Amara", "Amelia", "Amir", "Amy", "Ana", "Andre", "Andrea", "Andrew", "Angela",
        "Anika", "Anna", "Anton", "Arjun", "Arthur", "Astrid", "Ava", "Ayesha", "Barbara",
        "Beatrice", "Ben", "Benedict", "Bianca", "Boris", "Brenda", "Bruno", "Caleb", "Camila",
        "Carl", "Carla", "Carmen", "Caroline", "Cecilia", "Charles", "Charlotte", "Chiara", "Chloe",
        "Christian", "Clara", "Claude", "Colin", "Connor", "Dana", "Daniel", "Daria", "Darius",
        "David", "Deborah", "Diana", "Diego", "Dmitri", "Dominic", "Dorothy", "Edgar", "Edith",
        "Eduardo", "Edward", "Eleanor", "Elena", "Elias", "Elif", "Eliza", "Ella", "Emil", "Emily",
        "Emma", "Enzo", "Eric", "Erik", "Esther", "Ethan", "Eva", "Evelyn", "Fabian", "Farah",
        "Fatima", "Felix", "Fernando", "Fiona", "Florian", "Frances", "Francesca", "Frank", "Freya",
        "Gabriel", "Gemma", "George", "Georgia", "Gianni", "Gloria", "Gordon", "Greta", "Gustav",
        "Hamid", "Hana", "Hannah", "Harold", "Harriet", "Hassan", "Hector", "Heidi", "Helen",
        "Henrik", "Henry", "Hugo", "Ian", "Ibrahim", "Ida", "Ilya", "Imani", "Ingrid", "Irene",
        "Isaac", "Isabel", "Ivan", "Jack", "Jacob", "Jakob", "James", "Jana", "Jasmine", "Javier",
        "Jean", "Jessica", "Joanna", "Johan", "John", "Jonas", "Joseph", "Julia", "Julian", "Kai",
        "Karen", "Karim", "Katarina", "Kate", "Kenji", "Kevin", "Khalid", "Kim", "Klara", "Laila",
        "Lars", "Laura", "Leo", "Leon", "Lidia", "Liam", "Lila", "Linda", "Lorenzo", "Louis",
        "Lucia", "Lucy", "Luis", "Luka", "Lydia", "Magnus", "Malik", "Marco", "Margaret", "Maria",
        "Marius", "Mark", "Marta", "Martin", "Matteo", "Maya", "Mehmet", "Mei", "Mia", "Michael",
        "Mikhail", "Milan", "Mira", "Monica", "Nadia", "Naomi", "Nathan", "Nia", "Nikolai", "Nina",
        "Noah", "Nora", "Olga", "Oliver", "Olivia", "Omar", "Oscar", "Pablo", "Patrick", "Paul",
        "Paula", "Pedro", "Peter", "Philip", "Priya", "Rafael", "Rahul", "Rania", "Raphael",
        "Rebecca", "Ricardo", "Rita", "Robert", "Roman", "Rosa", "Ruth", "Sakura", "Samuel", "Sara",
        "Sebastian", "Selin", "Sergei", "Simon", "Sofia", "Sophie", "Stefan", "Susan", "Sven",
        "Tamara", "Teresa", "Theo", "Thomas", "Tobias", "Tomas", "Ursula", "Valentina", "Vera",
        "Victor", "Viktor", "Walter", "Wanda", "Xavier", "Yara", "Yusuf", "Zara", "Zoe", "Beatriz",
        "Kofi", "Ama", "Tariq", "Leila", "Nikita", "Oksana", "Pavel", "Radek", "Zofia", "Hiroshi",
        "Yuna", "Minh", "Linh", "Arash", "Shirin", "Thabo", "Zanele", "Ines", "Joao"};

constexpr std::string_view kLastNames[] = {"Abbott", "Adeyemi", "Aguilar", "Alvarez", "Andersen",
        "Antonelli", "Arslan", "Bach", "Baker", "Banerjee", "Barros", "Bauer", "Becker", "Bennett",
        "Bergstrom", "Bianchi", "Blanco", "Bondarenko", "Borges", "Brandt", "Brennan", "Castillo",
        "Castro", "Chakraborty", "Chavez", "Chen", "Clarke", "Coleman", "Costa", "Cruz", "Dahl",
        "Dalton", "Das", "Delgado", "Demir", "Diaz", "Dimitrov", "Dubois", "Duarte", "Dunn",
        "Eriksen", "Esposito", "Evans", "Farouk", "Fischer", "Fitzgerald", "Fleming", "Fontaine",
        "Foster", "Fournier", "Franco", "Fuchs", "Gallagher", "Garcia", "Gomez", "Gonzalez",
        "Graham", "Gruber", "Gupta", "Haddad", "Hahn", "Hansen", "Harper", "Hashimoto", "Hayes",
        "Herrera", "Hoffmann", "Horvath", "Huang", "Hughes", "Ito", "Ivanova", "Jablonski",
        "Jansen", "Jensen", "Jimenez", "Johansson", "Kaplan", "Karimi", "Kaur", "Keller", "Kennedy",
        "Khan", "Klein", "Koch", "Kowalski", "Kraus", "Kumar", "Lambert", "Larsen", "Laurent",
        "Lehmann", "Lindqvist", "Lopez", "Lorenz", "Ludwig", "Lund", "Mahmoud", "Maier", "Mancini",
        "Marino", "Martinez", "Matsumoto", "Mazur", "McCarthy", "Mendes", "Mensah", "Mercier",
        "Meyer", "Molina", "Moreau", "Morales", "Moreno", "Murphy", "Nakamura", "Navarro", "Nguyen",
        "Nielsen", "Novak", "Nowak", "Nunez", "O'Brien", "O'Connor", "Okafor", "Oliveira", "Olsen",
        "Ortega", "Osei", "Ozturk", "Park", "Patel", "Pereira", "Perez", "Petersen", "Petrova",
        "Popescu", "Price", "Quinn", "Ramirez", "Ramos", "Rao", "Reyes", "Richter", "Rios",
        "Rivera", "Rocha", "Romano", "Rossi", "Roth", "Russo", "Saito", "Salazar", "Sanchez",
        "Santos", "Sato", "Schmidt", "Schneider", "Schulz", "Schwarz", "Sharma", "Silva", "Singh",
        "Sokolov", "Sorensen", "Souza", "Stein", "Suzuki", "Svensson", "Takahashi", "Tanaka",
        "Torres", "Tran", "Vargas", "Vasquez", "Vogel", "Volkov", "Wagner", "Walsh", "Weber",
        "Werner", "Wolff", "Yamamoto", "Yilmaz", "Zhang", "Zimmermann", "Ward", "Hale", "Lindgren",
        "Morrison", "Sutherland", "Whitaker", "Callahan", "Donovan", "Kerrigan", "Pemberton",
        "Ruiz", "Mejia", "Cardenas", "Acosta", "Fuentes", "Guerrero", "Medina", "Campos", "Vega",
        "Soto", "Carvalho", "Teixeira", "Pinto", "Moura", "Lima", "Nascimento", "Kovac", "Babic",
        "Horak", "Dvorak", "Kral", "Nemeth", "Szabo", "Toth", "Varga", "Papadopoulos", "Georgiou",
        "Nikolaidis", "Kaya", "Sahin", "Celik", "Aydin", "Ozdemir", "Hosseini", "Rahimi", "Tehrani",
        "Nasser", "Saleh", "Aziz", "Rahman", "Hossain", "Chowdhury", "Iyer", "Menon", "Pillai",
        "Reddy", "Nair", "Joshi", "Mehta", "Bose", "Wong", "Lau", "Tan", "Lim", "Ng", "Chua", "Goh",
        "Ong", "Teo", "Le", "Pham", "Hoang", "Vu", "Dang", "Bui", "Phan", "Ngo", "Ly", "Mbeki",
        "Okonkwo", "Achebe", "Diallo", "Traore", "Keita", "Haugen", "Berg-Olsen"};

constexpr std::string_view kStreetNames[] = {"Elm", "Oak", "Maple", "Cedar", "Birch", "Willow",
        "Aspen", "Poplar", "Chestnut", "Hawthorn", "Juniper", "Laurel", "Magnolia", "Sycamore",
        "Spruce", "Alder", "Linden", "Walnut", "Hickory", "Cypress", "Redwood", "Mulberry",
        "Dogwood", "Beech", "Larch", "Hemlock", "Rowan", "Holly", "Heather", "Bramble", "Thistle",
        "Clover", "Primrose", "Foxglove", "Bluebell", "Lavender", "Rosemary", "Meadow", "Orchard",
        "Quarry", "Mill", "Mill Pond", "Kings", "Queens", "Church", "Station", "Market", "Bridge",
        "Canal", "River", "Brook", "Spring", "Fountain", "Garden", "Highland", "Ridge", "Summit",
        "Valley", "Sunset", "Sunrise", "Colonial", "Pioneer", "Liberty", "Union", "Franklin",
        "Jefferson", "Madison", "Lincoln", "Washington", "Monroe", "Hamilton", "Grant", "Cleveland",
        "Pierce", "Academy", "College", "School", "Prospect", "Pleasant", "Fairview", "Greenwood",
        "Woodland", "Forest", "Pine", "Pine Hill", "Cherry Hill", "Willow Creek", "Fox Run",
        "Deer Path", "Eagle", "Falcon", "Heron", "Kingfisher", "Sparrow", "Robin", "Lark", "Wren",
        "Swan", "Bayview", "Seaview", "Lighthouse", "Anchor", "Tidewater", "Copper", "Silver",
        "Granite", "Marble", "Flint", "Slate", "Iron", "Cobalt", "Windmill", "Tannery", "Foundry",
        "Forge", "Hillcrest", "Lakeview", "Riverside", "Meadowbrook", "Stony Brook", "Old Mill",
        "High", "Green", "Orchard Hill", "Vineyard", "Harvest", "Barley", "Oatfield", "Wheatley",
        "Quail", "Pheasant", "Partridge", "Badger", "Otter", "Beaver", "Elk", "Bison", "Cardinal",
        "Bluebird", "Magpie", "Raven", "Pelican", "Osprey", "Juniper Ridge", "Aspen Grove",
        "Cedar Hollow", "Maple Leaf", "Acorn"};

constexpr std::string_view kStreetTypes[] = {
        "Street", "Avenue", "Road", "Lane", "Drive", "Way", "Court"};

constexpr std::string_view kCities[] = {"Ashford", "Brookvale", "Carrington", "Dunmore", "Eastbury",
        "Fairhaven", "Glenwood", "Hartwell", "Ivybridge", "Kingsbury", "Lakeport", "Millbrook",
        "Northam", "Oakridge", "Pembury", "Queensbridge", "Riverton", "Stonebridge", "Thornbury",
        "Upton", "Westfield", "Whitby", "Yarmouth", "Ashbourne", "Bexley", "Caldwell", "Denholm",
        "Elmstead", "Farnley", "Greystone", "Halewood", "Ilford", "Kendal", "Langley", "Marlow",
        "Newbury", "Oldham", "Preston", "Redhill", "Selby", "Tamworth", "Ventnor", "Wexford",
        "Abbotsford", "Bramley", "Chesterfield", "Dorchester", "Eversley", "Fenwick", "Grantham",
        "Hexham", "Kirkby", "Lydney", "Morpeth", "Norwood", "Ormskirk", "Penrith", "Ramsey",
        "Sandown", "Tetbury", "Wetherby", "Windermere", "Amberley", "Blackwater", "Clifton",
        "Dalby", "Evesham", "Frome", "Gosport", "Harwich", "Keswick", "Ludlow", "Malvern", "Nairn",
        "Oakham", "Padstow", "Stroud", "Truro", "Wells", "Port Alden", "Port Ellis",
        "North Ferriby", "East Linton", "West Calder", "Saint Aubyn", "Castle Combe",
        "Lower Slaughter", "Great Ayton", "Little Haven", "Bishops Lydeard", "Tealby Rasen",
        "Newton Abbot", "Hunstanton", "Bourton", "Crediton", "Dunster", "Holt", "Kelso", "Moffat",
        "Peebles", "Tain", "Wick", "Alnwick", "Bude", "Cromer", "Looe"};

constexpr std::string_view kDomains[] = {"example.com", "example.org", "example.net"};

constexpr std::string_view kQuotedStreet = "12 Elm Street, Apt 4";

// ---- tokens, as the EDM tokeniser sees them (detectors/edm_tokens.h) ----

bool is_word_byte(uint8_t c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
}

bool is_joiner(uint8_t c) {
    return c == '.' || c == '-' || c == '_' || c == '@' || c == '+' || c == '\'' || c == '/';
}

char lower(char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// The words of text, lower case; a joiner stays inside a word when word bytes surround it.
std::vector<std::string> words_of(std::string_view text) {
    std::vector<std::string> words;
    std::string current;
    for (size_t i = 0; i < text.size(); ++i) {
        const auto c = static_cast<uint8_t>(text[i]);
        if (is_word_byte(c)) {
            current += lower(text[i]);
        } else if (is_joiner(c) && !current.empty() && i + 1 < text.size()
                && is_word_byte(static_cast<uint8_t>(text[i + 1]))) {
            current += text[i];
        } else if (!current.empty()) {
            words.push_back(std::move(current));
            current.clear();
        }
    }
    if (!current.empty()) {
        words.push_back(std::move(current));
    }
    return words;
}

constexpr size_t kMaxSequenceWords = 8;

// Every run of one to kMaxSequenceWords consecutive words of text, joined by one space.
std::vector<std::string> word_sequences(std::string_view text) {
    const std::vector<std::string> words = words_of(text);
    std::vector<std::string> out;
    for (size_t i = 0; i < words.size(); ++i) {
        std::string sequence;
        for (size_t n = 0; n < kMaxSequenceWords && i + n < words.size(); ++n) {
            if (n > 0) {
                sequence += ' ';
            }
            sequence += words[i + n];
            out.push_back(sequence);
        }
    }
    return out;
}

std::string normalised(std::string_view value) {
    std::string out;
    for (const std::string& w : words_of(value)) {
        if (!out.empty()) {
            out += ' ';
        }
        out += w;
    }
    return out;
}

// Throws std::logic_error when two lists share a word or a city is too short to protect.
void check_word_lists() {
    auto words = [](auto const&... lists) {
        std::set<std::string> own;
        (
                [&own](const auto& list) {
                    for (const std::string_view value : list) {
                        for (const std::string& w : words_of(value)) {
                            own.insert(w);
                        }
                    }
                }(lists),
                ...);
        return own;
    };
    const std::array<std::set<std::string>, 4> categories = {words(kFirstNames), words(kLastNames),
            words(kStreetNames, kStreetTypes, std::array{kQuotedStreet}), words(kCities)};
    std::set<std::string> seen;
    for (const auto& own : categories) {
        for (const std::string& w : own) {
            if (!seen.insert(w).second) {
                throw std::logic_error("EDM word lists share the word " + w);
            }
        }
    }
    for (const std::string_view c : kCities) {
        if (normalised(c).size() < 4) {
            throw std::logic_error("EDM city name too short: " + std::string(c));
        }
    }
}

// ---- the table ----

enum class Column : uint8_t {
    kAccountNumber,
    kFullName,
    kEmail,
    kStreetAddress,
    kCity,
};

constexpr std::array<std::string_view, 5> kColumnNames = {
        "account_number", "full_name", "email", "street_address", "city"};

std::string_view column_name(Column c) {
    return kColumnNames[static_cast<size_t>(c)];
}

constexpr std::array<Column, 5> kAllColumns = {Column::kAccountNumber, Column::kFullName,
        Column::kEmail, Column::kStreetAddress, Column::kCity};

uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void append_decimal(std::string& out, uint64_t v) {
    char buf[24];
    size_t n = 0;
    do {
        buf[n++] = static_cast<char>('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0) {
        out += buf[--n];
    }
}

// Letters of a name, lower case ("O'Brien" -> "obrien").
void append_email_part(std::string& out, std::string_view name) {
    for (const char c : name) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
            out += lower(c);
        }
    }
}

constexpr uint64_t kAccountBase = 1000000000ULL;  // ten digits, the first not 0
constexpr uint64_t kAccountSpan = 9000000000ULL;  // up to 9999999999
constexpr unsigned kFeistelHalfBits = 17;         // 34 bits >= kAccountSpan
constexpr uint64_t kFeistelHalfMask = (1ULL << kFeistelHalfBits) - 1;

class CustomerTable {
public:
    CustomerTable(uint64_t seed, uint64_t rows) : rows_(rows) {
        Rng rng(seed ^ 0x6564'6d2d'7461'626cULL);  // "edm-tabl"
        for (uint64_t& k : keys_) {
            k = rng.next();
        }
    }

    uint64_t rows() const { return rows_; }

    uint64_t account_number(uint64_t row) const {
        uint64_t x = row;
        do {
            x = feistel(x);
        } while (x >= kAccountSpan);
        return kAccountBase + x;
    }

    void append(std::string& out, uint64_t row, Column column) const {
        switch (column) {
        case Column::kAccountNumber:
            append_decimal(out, account_number(row));
            break;
        case Column::kFullName: {
            const uint64_t h = hash(row, 0);
            out += kFirstNames[first_index(h)];
            out += ' ';
            out += kLastNames[last_index(h)];
            break;
        }
        case Column::kEmail: {
            const uint64_t h = hash(row, 0);
            const std::string_view first = kFirstNames[first_index(h)];
            const std::string_view last = kLastNames[last_index(h)];
            const uint64_t style = hash(row, 1);
            switch (style % 4) {
            case 0:
                append_email_part(out, first);
                out += '.';
                append_email_part(out, last);
                break;
            case 1:
                append_email_part(out, first);
                append_email_part(out, last);
                break;
            case 2:
                append_email_part(out, first.substr(0, 1));
                out += '.';
                append_email_part(out, last);
                break;
            default:
                append_email_part(out, first);
                out += '_';
                append_email_part(out, last);
                break;
            }
            append_decimal(out, row + 1);
            out += '@';
            out += kDomains[(style >> 8) % std::size(kDomains)];
            break;
        }
        case Column::kStreetAddress: {
            if (row == kEdmQuotedRow) {
                out += kQuotedStreet;
                break;
            }
            const uint64_t h = hash(row, 2);
            switch (h % 4) {
            case 0:
                append_decimal(out, 1 + (h >> 8) % 99);
                break;
            case 3:
                append_decimal(out, 1000 + (h >> 8) % 9000);
                break;
            default:
                append_decimal(out, 100 + (h >> 8) % 900);
                break;
            }
            out += ' ';
            out += kStreetNames[(h >> 24) % std::size(kStreetNames)];
            out += ' ';
            out += kStreetTypes[(h >> 48) % std::size(kStreetTypes)];
            break;
        }
        case Column::kCity:
            out += kCities[hash(row, 3) % std::size(kCities)];
            break;
        }
    }

    std::string value(uint64_t row, Column column) const {
        std::string out;
        append(out, row, column);
        return out;
    }

    // One CSV line of the given columns; a value holding a comma or a quote is quoted.
    void append_csv(std::string& out, uint64_t row, std::span<const Column> columns) const {
        for (size_t i = 0; i < columns.size(); ++i) {
            if (i > 0) {
                out += ',';
            }
            const size_t at = out.size();
            append(out, row, columns[i]);
            if (out.find_first_of(",\"", at) != std::string::npos) {
                std::string quoted = "\"";
                for (size_t k = at; k < out.size(); ++k) {
                    quoted += out[k];
                    if (out[k] == '"') {
                        quoted += '"';
                    }
                }
                quoted += '"';
                out.replace(at, std::string::npos, quoted);
            }
        }
        out += '\n';
    }

private:
    uint64_t hash(uint64_t row, size_t field) const {
        return mix64(keys_[4 + field] + row * 0x9e3779b97f4a7c15ULL);
    }
    static size_t first_index(uint64_t h) { return (h & 0xffffffff) % std::size(kFirstNames); }
    static size_t last_index(uint64_t h) { return (h >> 32) % std::size(kLastNames); }

    uint64_t feistel(uint64_t x) const {
        uint64_t left = x >> kFeistelHalfBits;
        uint64_t right = x & kFeistelHalfMask;
        for (size_t round = 0; round < 4; ++round) {
            const uint64_t f = mix64(right ^ keys_[round]) & kFeistelHalfMask;
            const uint64_t next_right = left ^ f;
            left = right;
            right = next_right;
        }
        return (left << kFeistelHalfBits) | right;
    }

    uint64_t rows_;
    std::array<uint64_t, 8> keys_{};  // 0-3 Feistel rounds, 4-7 fields
};

std::string csv_header(std::span<const Column> columns) {
    std::string out;
    for (const Column c : columns) {
        if (!out.empty()) {
            out += ',';
        }
        out += column_name(c);
    }
    out += '\n';
    return out;
}

// Returns the bytes written. Throws std::runtime_error on I/O errors.
uint64_t write_table(const std::string& path, const CustomerTable& table) {
    std::FILE* file = std::fopen(path.c_str(), "wb");
    if (file == nullptr) {
        throw std::runtime_error("cannot open " + path);
    }
    constexpr size_t kChunk = 1 << 20;
    std::string buf;
    buf.reserve(kChunk + 1024);
    buf = csv_header(kAllColumns);
    uint64_t bytes = 0;
    bool ok = true;
    for (uint64_t row = 0; row < table.rows() && ok; ++row) {
        table.append_csv(buf, row, kAllColumns);
        if (buf.size() >= kChunk) {
            ok = std::fwrite(buf.data(), 1, buf.size(), file) == buf.size();
            bytes += buf.size();
            buf.clear();
        }
    }
    if (ok && !buf.empty()) {
        ok = std::fwrite(buf.data(), 1, buf.size(), file) == buf.size();
        bytes += buf.size();
    }
    if (std::fclose(file) != 0 || !ok) {
        throw std::runtime_error("cannot write " + path);
    }
    return bytes;
}

void write_text(const std::string& path, std::string_view text) {
    std::FILE* file = std::fopen(path.c_str(), "wb");
    if (file == nullptr) {
        throw std::runtime_error("cannot open " + path);
    }
    const bool ok = std::fwrite(text.data(), 1, text.size(), file) == text.size();
    if (std::fclose(file) != 0 || !ok) {
        throw std::runtime_error("cannot write " + path);
    }
}

constexpr std::string_view kSchema =
        "table: customers\n"
        "primary: account_number\n"
        "columns:\n"
        "  - {name: account_number, type: number}\n"
        "  - {name: full_name, type: name}\n"
        "  - {name: email, type: email}\n"
        "  - {name: street_address, type: address}\n"
        "  - {name: city, type: text}\n";

// n distinct rows from all over the table, none of them in used (which gains them).
std::vector<uint64_t> pick_rows(
        Rng& rng, const CustomerTable& table, size_t n, std::set<uint64_t>& used) {
    std::vector<uint64_t> rows;
    while (rows.size() < n) {
        const uint64_t row = rng.below(table.rows());
        if (used.insert(row).second) {
            rows.push_back(row);
        }
    }
    return rows;
}

// ---- captures ----

constexpr size_t kRowsPerCapture = 50;
constexpr size_t kJsonRows = 5;

uint64_t name_seed(uint64_t seed, std::string_view name) {
    uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a
    for (const char c : name) {
        h = (h ^ static_cast<uint8_t>(c)) * 0x100000001b3ULL;
    }
    return mix64(seed ^ h);
}

IpAddr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
    return IpAddr::v4(a, b, c, d);
}

// One capture of HTTP connections, one after the other.
class EdmCapture {
public:
    EdmCapture(uint64_t seed, std::string_view name, uint8_t host)
        : rng_(name_seed(seed, name)),
          t_(kBaseTimeUs + 200000),
          client_(inside_host(rng_, v4(10, 20, 4, host))),
          server_(outside_host(rng_, v4(203, 0, 113, static_cast<uint8_t>(60 + host)))) {}

    Rng& rng() { return rng_; }

    // A connection of its own for one request and its response.
    void http(HttpExchange& exchange) { connection(std::span<HttpExchange>(&exchange, 1), false); }

    // One connection for several requests and their responses (HTTP/1.1 keep-alive).
    void http_keepalive(std::vector<HttpExchange>& exchanges) { connection(exchanges, true); }

    // A POST of body, answered with a short JSON status. With scramble the request goes out
    // in segments of 90 to 200 bytes, segments 3m+1 and 3m+2 swapped and one segment (not of
    // a swapped pair) retransmitted.
    void post(std::string_view path, std::string_view type, const std::string& body,
            bool scramble = false) {
        HttpRequest request;
        request.method = "POST";
        request.host = "crm-sync.example.net";
        request.path = path;
        request.content_type = type;
        request.body_len = body.size();
        HttpExchange exchange;
        exchange.request = http_request_head(rng_, request) + body;
        if (scramble) {
            for (size_t at = rng_.range(90, 200); at < exchange.request.size();
                    at += rng_.range(90, 200)) {
                exchange.request_cuts.push_back(at);
            }
            const size_t segments = exchange.request_cuts.size() + 1;
            for (size_t k = 1; k + 1 < segments; k += 3) {
                exchange.request_disorder.swaps.push_back(k);
            }
            exchange.request_disorder.retransmits.push_back(segments / 2 / 3 * 3);
        }
        exchange.response.content_type = "application/json";
        exchange.response_body = "{\"status\":\"ok\"}\n";
        http(exchange);
    }

    // Writes the flows to path; returns the packets written.
    uint64_t write(const std::string& path) { return write_flows(path, flows_); }

private:
    void connection(std::span<HttpExchange> exchanges, bool keep_alive) {
        const Endpoint c{client_, ephemeral_port(rng_)};
        const Endpoint s{server_, 80};
        auto session = std::make_unique<TcpSession>(tcp_config(rng_, c, s), rng_, t_);
        session->connect();
        for (HttpExchange& exchange : exchanges) {
            exchange.response.keep_alive = exchange.response.keep_alive || keep_alive;
            run_exchange(*session, rng_, exchange);
            session->pause(rng_.range(100, 2000));
        }
        session->close(Side::kClient);
        t_ = session->now_us() + rng_.range(20000, 400000);
        flows_.push_back(std::move(session));
    }

    Rng rng_;
    uint64_t t_;
    Host client_;
    Host server_;
    std::vector<std::unique_ptr<Flow>> flows_;
};

// The 50 rows of csv50 and reordered: kEdmQuotedRow among rows from all over the table.
std::vector<uint64_t> csv50_rows(uint64_t seed, const CustomerTable& table) {
    Rng rng(name_seed(seed, "csv50-rows"));
    std::set<uint64_t> used = {kEdmQuotedRow};
    std::vector<uint64_t> rows = pick_rows(rng, table, kRowsPerCapture - 1, used);
    rows.insert(rows.begin() + static_cast<std::ptrdiff_t>(rng.below(rows.size())), kEdmQuotedRow);
    return rows;
}

std::string full_csv(const CustomerTable& table, const std::vector<uint64_t>& rows) {
    std::string body = csv_header(kAllColumns);
    for (const uint64_t row : rows) {
        table.append_csv(body, row, kAllColumns);
    }
    return body;
}

std::string capture_csv50(EdmCapture& c, const CustomerTable& table, uint64_t seed) {
    const std::string body = full_csv(table, csv50_rows(seed, table));
    c.post("/api/v2/customers/import", "text/csv", body);
    return body;
}

std::string capture_reordered(EdmCapture& c, const CustomerTable& table, uint64_t seed) {
    const std::string body = full_csv(table, csv50_rows(seed, table));
    c.post("/api/v2/customers/import", "text/csv", body, true);
    return body;
}

// The body in chunks of `size` bytes (RFC 9112 chunked coding), ending with the last chunk.
std::string chunked(std::string_view body, size_t size) {
    static constexpr std::string_view kHex = "0123456789abcdef";
    std::string out;
    for (size_t at = 0; at < body.size(); at += size) {
        const size_t n = std::min(size, body.size() - at);
        std::string length;
        for (size_t v = n; v > 0; v /= 16) {
            length.insert(length.begin(), kHex[v % 16]);
        }
        out += length + "\r\n" + std::string(body.substr(at, n)) + "\r\n";
    }
    return out + "0\r\n\r\n";
}

std::string capture_chunked_keepalive(EdmCapture& c, const CustomerTable& table) {
    std::set<uint64_t> used;
    std::vector<HttpExchange> exchanges(2);
    std::string bodies;
    for (HttpExchange& exchange : exchanges) {
        const std::string body = full_csv(table, pick_rows(c.rng(), table, 25, used));
        exchange.request =
                "POST /api/v2/customers/import HTTP/1.1\r\n"
                "Host: crm-sync.example.net\r\n"
                "Content-Type: text/csv\r\n"
                "Transfer-Encoding: chunked\r\n\r\n"
                + chunked(body, 100);
        exchange.response.content_type = "application/json";
        exchange.response_body = "{\"status\":\"ok\"}\n";
        bodies += body;
    }
    c.http_keepalive(exchanges);
    return bodies;
}

// "a b" as a form value: '+' for spaces, %XX for the rest of what is not a word character.
std::string form_value(std::string_view value) {
    static constexpr std::string_view kHex = "0123456789ABCDEF";
    std::string out;
    for (const char ch : value) {
        const auto c = static_cast<unsigned char>(ch);
        if (std::isalnum(c) != 0 || ch == '.' || ch == '-' || ch == '_') {
            out += ch;
        } else if (ch == ' ') {
            out += '+';
        } else {
            out += '%';
            out += kHex[c >> 4];
            out += kHex[c & 15];
        }
    }
    return out;
}

std::string capture_form_keepalive(EdmCapture& c, const CustomerTable& table) {
    std::set<uint64_t> used = {kEdmQuotedRow};  // plain fields: split at commas below
    std::vector<HttpExchange> exchanges(3);
    std::string bodies;
    for (HttpExchange& exchange : exchanges) {
        const uint64_t row = pick_rows(c.rng(), table, 1, used)[0];
        std::string csv;
        table.append_csv(csv, row, kAllColumns);
        // account_number,full_name,email,... of the row, as form fields, e-mail last.
        const std::vector<std::string> fields = [&] {
            std::vector<std::string> out;
            std::string field;
            for (const char ch : csv) {
                if (ch == ',' || ch == '\n') {
                    out.push_back(field);
                    field.clear();
                } else {
                    field += ch;
                }
            }
            return out;
        }();
        const std::string body = "account=" + form_value(fields[0])
                + "&name=" + form_value(fields[1]) + "&email=" + form_value(fields[2]);
        exchange.request =
                "POST /account/update HTTP/1.1\r\n"
                "Host: crm-sync.example.net\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                "Content-Length: "
                + std::to_string(body.size()) + "\r\n\r\n" + body;
        exchange.response.content_type = "application/json";
        exchange.response_body = "{\"status\":\"ok\"}\n";
        bodies += body + "\n";
    }
    c.http_keepalive(exchanges);
    return bodies;
}

std::string capture_names_only(EdmCapture& c, const CustomerTable& table) {
    constexpr std::array<Column, 3> kColumns = {
            Column::kFullName, Column::kStreetAddress, Column::kCity};
    std::set<uint64_t> used;
    std::string body = csv_header(kColumns);
    for (const uint64_t row : pick_rows(c.rng(), table, kRowsPerCapture, used)) {
        table.append_csv(body, row, kColumns);
    }
    c.post("/upload/contacts.csv", "text/csv", body);
    return body;
}

std::string capture_mixed(EdmCapture& c, const CustomerTable& table) {
    Rng& rng = c.rng();
    std::set<uint64_t> used;
    const std::vector<uint64_t> primary_rows = pick_rows(rng, table, kRowsPerCapture, used);
    // Every value of those rows but the account number: nothing of the capture may read as one.
    std::set<std::string> owned;
    for (const uint64_t row : primary_rows) {
        for (const Column col : kAllColumns) {
            if (col != Column::kAccountNumber) {
                owned.insert(normalised(table.value(row, col)));
            }
        }
    }
    auto foreign = [&owned](const std::string& value) {
        for (const std::string& s : word_sequences(value)) {
            if (owned.count(s) != 0) {
                return false;
            }
        }
        return true;
    };
    // Line i: the account number of primary_rows[i], each other column from a row of its own.
    std::vector<std::array<std::string, 5>> lines;
    for (const uint64_t row : primary_rows) {
        std::array<std::string, 5> line;
        line[0] = table.value(row, Column::kAccountNumber);
        for (size_t col = 1; col < kAllColumns.size(); ++col) {
            for (;;) {
                const uint64_t donor = rng.below(table.rows());
                if (used.count(donor) != 0) {
                    continue;
                }
                std::string value = table.value(donor, kAllColumns[col]);
                if (foreign(value)) {
                    used.insert(donor);
                    line[col] = std::move(value);
                    break;
                }
            }
        }
        lines.push_back(std::move(line));
    }
    std::string body = csv_header(kAllColumns);
    for (const auto& line : lines) {
        for (size_t col = 0; col < line.size(); ++col) {
            if (col > 0) {
                body += ',';
            }
            const bool quote = line[col].find(',') != std::string::npos;
            body += quote ? "\"" + line[col] + "\"" : line[col];
        }
        body += '\n';
    }
    if (!foreign(body)) {
        throw std::logic_error("edm-mixed: a value of a row whose account number is sent");
    }
    c.post("/api/v2/customers/import", "text/csv", body);
    return body;
}

std::string json_string(std::string_view value) {
    if (value.find_first_of("\"\\") != std::string_view::npos) {
        throw std::logic_error("EDM value needs JSON escaping");
    }
    return "\"" + std::string(value) + "\"";
}

std::string capture_json5(EdmCapture& c, const CustomerTable& table) {
    std::set<uint64_t> used;
    const std::vector<uint64_t> rows = pick_rows(c.rng(), table, kJsonRows, used);
    std::string body = "[\n";
    for (size_t i = 0; i < rows.size(); ++i) {
        const uint64_t row = rows[i];
        body += "  {\n";
        body += "    \"email\": " + json_string(table.value(row, Column::kEmail)) + ",\n";
        body += "    \"street_address\": " + json_string(table.value(row, Column::kStreetAddress))
                + ",\n";
        body += "    \"full_name\": " + json_string(table.value(row, Column::kFullName)) + ",\n";
        body += "    \"account_number\": " + table.value(row, Column::kAccountNumber) + ",\n";
        body += "    \"city\": " + json_string(table.value(row, Column::kCity)) + "\n";
        body += i + 1 < rows.size() ? "  },\n" : "  }\n";
    }
    body += "]\n";
    c.post("/api/v2/customers/export", "application/json", body);
    return body;
}

std::string capture_benign(EdmCapture& c) {
    Rng& rng = c.rng();
    HttpRequest get;
    get.host = "docs.example.org";
    get.path = "/handbook/release-notes.html";
    HttpExchange download;
    download.request = http_request_head(rng, get);
    download.response_body = html_page(rng, "Release notes", 9000);
    c.http(download);

    std::string body;
    while (body.size() < 3000) {
        body += word(rng);
        body += body.size() % 9 == 0 ? '\n' : ' ';
    }
    body += '\n';
    c.post("/notes/draft", "text/plain; charset=utf-8", body);
    return body;
}

}  // namespace

std::vector<std::string> run_edm(const std::string& prefix, uint64_t seed, uint64_t rows) {
    if (rows < kEdmMinRows || rows > kEdmMaxRows) {
        throw std::invalid_argument("--rows must be between " + std::to_string(kEdmMinRows)
                + " and " + std::to_string(kEdmMaxRows));
    }
    check_word_lists();
    const CustomerTable table(seed, rows);
    std::vector<std::string> lines;

    const std::string csv_path = prefix + "-customers.csv";
    const uint64_t csv_bytes = write_table(csv_path, table);
    lines.push_back(csv_path + ": " + std::to_string(rows) + " rows, " + std::to_string(csv_bytes)
            + " bytes");
    const std::string schema_path = prefix + "-customers.yaml";
    write_text(schema_path, kSchema);
    lines.push_back(schema_path + ": schema of table customers, primary account_number");

    for (size_t i = 0; i < kEdmCases.size(); ++i) {
        const std::string_view name = kEdmCases[i].capture;
        EdmCapture c(seed, name, static_cast<uint8_t>(10 + i));
        std::string body;
        if (name == "csv50") {
            body = capture_csv50(c, table, seed);
        } else if (name == "reordered") {
            body = capture_reordered(c, table, seed);
        } else if (name == "names-only") {
            body = capture_names_only(c, table);
        } else if (name == "mixed") {
            body = capture_mixed(c, table);
        } else if (name == "json5") {
            body = capture_json5(c, table);
        } else if (name == "benign") {
            body = capture_benign(c);
        } else if (name == "chunked-keepalive") {
            body = capture_chunked_keepalive(c, table);
        } else if (name == "form-keepalive") {
            body = capture_form_keepalive(c, table);
        } else {
            throw std::logic_error("no EDM capture named " + std::string(name));
        }
        const std::string path = prefix + "-" + std::string(name) + ".pcap";
        const uint64_t packets = c.write(path);
        lines.push_back(path + ": " + std::to_string(packets) + " packets, request body "
                + std::to_string(body.size()) + " bytes, expect "
                + (kEdmCases[i].records == 0 ? std::string("no EDM finding")
                                             : std::to_string(kEdmCases[i].records) + " records"));
    }
    return lines;
}

}  // namespace exfiltap::gen
