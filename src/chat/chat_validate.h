/* chat_validate.h - the chat contract's field rules and error vocabulary.
 *
 * Pure functions, no I/O and no server state: they turn the strings a client
 * sent (usernames, room names, message content, clientIds) into either a
 * validated value or a distinct negative result, and they name the error
 * codes the contract lets a reply carry. The event handlers decide which
 * contract code a failure becomes (chat_validate_err) and when to check it
 * (the contract's precedence order: rate_limited, invalid_payload,
 * not_joined, field rules, existence, membership).
 *
 * Every input is a (pointer, length) pair, never a C string: JSON strings
 * decoded with JSON_ALLOW_NUL may hold U+0000, which the rules refuse rather
 * than silently truncate. */
#ifndef PARLEY_CHAT_VALIDATE_H
#define PARLEY_CHAT_VALIDATE_H

#include <stddef.h>
#include "util/err.h"

/* ---- contract error codes ------------------------------------------------
 * The codes a reply may carry, in the contract's order. Positive values, so
 * that a handler may return -CHAT_ERR_x under the 0 / negative convention. */
typedef enum {
    CHAT_ERR_INVALID_PAYLOAD = 1,
    CHAT_ERR_INVALID_USERNAME,
    CHAT_ERR_USERNAME_TAKEN,
    CHAT_ERR_NOT_JOINED,
    CHAT_ERR_INVALID_ROOM,
    CHAT_ERR_ROOM_NOT_FOUND,
    CHAT_ERR_NOT_IN_ROOM,
    CHAT_ERR_USER_NOT_FOUND,
    CHAT_ERR_CONTENT_TOO_LONG,
    CHAT_ERR_RATE_LIMITED,
    CHAT_ERR_FORBIDDEN,
    CHAT_ERR_INTERNAL,
    CHAT_ERR_MESSAGE_NOT_FOUND, /* v2 */
} chat_err_t;

/* The contract's snake_case code ("invalid_payload", ...). A value outside
 * the enum gives "internal". Static storage; never NULL. */
const char *chat_error_code_str(chat_err_t code);

/* A sentence for a person, for the reply's "message" field. Static storage;
 * never NULL; "internal"'s text for values outside the enum. */
const char *chat_error_message(chat_err_t code);

/* ---- validation results --------------------------------------------------
 * What each validator returns: 0, or one of these. Which contract code a
 * result becomes depends on the field: see chat_validate_err. */
#define CHAT_VALID_EMPTY     ERR_EMPTY /* nothing left (after trimming, for names) */
#define CHAT_VALID_TOO_LONG  ERR_TOOLONG /* more code points than the field allows */
#define CHAT_VALID_BAD_CHAR  ERR_BADCHAR /* a character the field refuses */
#define CHAT_VALID_BAD_UTF8  ERR_BADUTF8 /* not well-formed UTF-8 (overlong forms,
                                     surrogates and > U+10FFFF included) */

/* Field limits, in code points. */
#define CHAT_USERNAME_MAX        32
#define CHAT_ROOM_MAX            64
#define CHAT_CLIENT_ID_MAX       64
#define CHAT_CONTENT_MAX_DEFAULT 4000

typedef enum {
    CHAT_FIELD_USERNAME,
    CHAT_FIELD_ROOM,
    CHAT_FIELD_CONTENT,
    CHAT_FIELD_CLIENT_ID,
} chat_field_t;

/* Maps a validator's negative result for a field to the contract code:
 *   username  -> invalid_username (every failure)
 *   room      -> invalid_room     (every failure)
 *   content   -> content_too_long for CHAT_VALID_TOO_LONG; invalid_payload
 *                for empty, bad UTF-8 and a refused control character (the
 *                contract names empty as invalid_payload and has no
 *                specific code for a forbidden character)
 *   clientId  -> invalid_payload  (the contract has no specific code)
 * `rc` must be negative (a result of 0 is not an error: gives internal). */
chat_err_t chat_validate_err(chat_field_t field, int rc);

/* ---- names (usernames and room names) ------------------------------------
 * The rule: trim Unicode White_Space at both ends; the rest must be valid
 * UTF-8, hold no character of general category Cc or Cf, and its NFC form
 * must be 1..max code points long (the length is counted on the trimmed NFC
 * form, the form that is shown). Invalid UTF-8 anywhere in the input, also
 * in the trimmed white space, refuses the name.
 *
 * Two names are the same name when their keys are equal. The key is the NFKC
 * case-folded form (utf8proc STABLE|COMPOSE|COMPAT|CASEFOLD, applied again
 * until it no longer changes, which makes it idempotent): "Alice", "ALICE"
 * and fullwidth "Ａｌｉｃｅ" share a key, and so do "ß" and "ss" (full case
 * folding; accepted on purpose, as Unicode's caseless matching does). Keys
 * hold no control character, so they may be joined with one (see
 * store_conv_private). */
typedef struct {
    char *display;      /* NFC of the trimmed input, NUL-terminated */
    size_t display_len; /* bytes, without the NUL */
    char *key;          /* comparison key, NUL-terminated */
    size_t key_len;
} chat_name_t;

/* Validates s[0..len) as a name of at most max_cp code points (the two
 * helpers below fix max_cp). Returns 0 and fills *out, whose strings the
 * caller then owns (chat_name_free); or a CHAT_VALID_* result with *out
 * zeroed. Input more than 8 * max_cp code points long is refused as
 * CHAT_VALID_TOO_LONG before it is normalized (its NFC form could not be
 * short enough: canonical composition at most quarters the length), which
 * bounds the work hostile input can cause. Aborts on out-of-memory. */
int chat_name_parse(const char *s, size_t len, size_t max_cp, chat_name_t *out);

/* chat_name_parse with CHAT_USERNAME_MAX / CHAT_ROOM_MAX. */
int chat_username_parse(const char *s, size_t len, chat_name_t *out);
int chat_room_parse(const char *s, size_t len, chat_name_t *out);

/* Frees the strings of n and zeroes it; n may be zeroed already. */
void chat_name_free(chat_name_t *n);

/* ---- message content -----------------------------------------------------
 * Checks s[0..len) as message content, measured as given (no trimming, no
 * normalization): 1..max_cp code points of valid UTF-8 with no C0 control
 * other than tab and newline (U+0000..U+0008 and U+000B..U+001F are
 * refused, CR and NUL included; DEL and C1 controls are allowed). Returns 0,
 * CHAT_VALID_EMPTY, CHAT_VALID_BAD_UTF8, CHAT_VALID_BAD_CHAR or
 * CHAT_VALID_TOO_LONG. The whole string is scanned, so a string that is both
 * too long and malformed gets the malformed result (invalid_payload comes
 * before the field rules in the contract's order). max_cp 0 means
 * CHAT_CONTENT_MAX_DEFAULT. */
int chat_content_check(const char *s, size_t len, size_t max_cp);

/* ---- clientId ------------------------------------------------------------
 * Checks s[0..len) as a clientId: 1..CHAT_CLIENT_ID_MAX code points of valid
 * UTF-8, any character. Returns 0, CHAT_VALID_EMPTY, CHAT_VALID_BAD_UTF8 or
 * CHAT_VALID_TOO_LONG. The clientId is then used as the exact bytes given
 * (it may contain U+0000: keep its length). */
int chat_client_id_check(const char *s, size_t len);

#endif
