/* store_contract_suite.c - the contract suite's table (sc_tests[], run
 * by both runners: see store_contract.h), with the files of the later
 * tests it lists. Included at the end of store_contract.c, whose tests
 * and wrappers it uses. */
#include "store_contract_msgs.c"
#include "store_contract_rooms.c"

/* ---- the suite ----------------------------------------------------------- */

static const sc_test sc_tests[] = {
    {"rooms: create, get, list", sc_test_rooms},
    {"rooms: an empty list", sc_test_room_list_empty},
    {"append and history", sc_test_append_and_history},
    {"history: paging over 250 messages", sc_test_paging_250},
    {"history: bad before ids and limits", sc_test_bad_before_ids},
    {"private conversations", sc_test_private_conversations},
    {"clientId de-duplication", sc_test_dedupe},
    {"since: messages after a time", sc_test_since},
    {"since: paging over 250 messages", sc_test_since_paging_250},
    {"private conversations of a user", sc_test_private_convs},
    {"one conversation: start order, exactly once", sc_test_order_one_conversation},
    {"an operation started from a callback", sc_test_callback_starts_op},
    {"close with operations pending", sc_test_close_with_ops_pending},
    {"reopen keeps everything", sc_test_reopen_keeps_everything},
    {"users: claim, get, find, touch, expiry", sc_test_user_claim},
    {"users: ensure (token mode)", sc_test_user_ensure},
    {"users: rename", sc_test_user_rename},
    {"secrets: get or create, kept across reopen", sc_test_secrets},
    {"direct conversations and sender ids", sc_test_direct_and_sender_ids},
    {"room membership", sc_test_membership},
    {"read state", sc_test_read_state},
    {"read state: unread over 300 messages", sc_test_read_state_long},
    {"conversation list", sc_test_conversations},
    {"users: purge of expired guests", sc_test_user_purge},
    {"users: a claim purges an expired owner", sc_test_claim_purges_expired},
    {"messages: replies, get, edit, delete", sc_test_msg_reply_edit_delete},
    {"messages: reactions", sc_test_reactions},
    {"messages: reactions from two stores", sc_test_reactions_two_stores},
    {"rooms: owners, roles, succession", sc_test_room_owners},
    {"rooms: an owner purged passes its rooms on", sc_test_room_owner_purged},
    {"rooms: settings, topic, the creator as owner", sc_test_room_settings},
    {"rooms: bans, mutes, invitations", sc_test_room_flags},
    {"messages: system messages", sc_test_system_messages},
    {"rooms: delete", sc_test_room_delete},
};
#define SC_NTESTS (sizeof(sc_tests) / sizeof(sc_tests[0]))
