<?php
/**
 * Creates N published posts fast (scripts/wordpress-e2e.sh seed): one PHP process, term counting
 * deferred, cache invalidation suspended, one transaction per 200 posts.
 *
 * Post hooks (save_post, transition_post_status, wp_insert_post, publish_post, ...) are removed
 * first unless WP_E2E_SEED_HOOKS=1, so an active plugin does not send one webhook per seeded
 * post: seeded posts are fixtures, not events.
 *
 * Environment: as lib.php, plus WP_E2E_SEED_COUNT, WP_E2E_SEED_TYPE (default post).
 * Prints {"created", "total", "first_id", "last_id", "seconds"}.
 */
require __DIR__ . '/lib.php';

global $wpdb;

$count = (int) getenv('WP_E2E_SEED_COUNT');
$type = getenv('WP_E2E_SEED_TYPE') ?: 'post';
if ($count < 0) {
    e2e_fail('--posts must be >= 0');
}
if (!post_type_exists($type)) {
    e2e_fail("unknown post type: $type");
}
$admin_id = e2e_admin_id();
wp_set_current_user($admin_id);

if (getenv('WP_E2E_SEED_HOOKS') !== '1') {
    foreach ([
        'save_post', "save_post_$type", 'wp_insert_post', 'wp_after_insert_post', 'transition_post_status',
        'new_to_publish', 'auto-draft_to_publish', 'draft_to_publish', "publish_$type", 'edit_post', 'post_updated',
    ] as $hook) {
        remove_all_actions($hook);
    }
}

$with_terms = is_object_in_taxonomy($type, 'category');
$cat_ids = $with_terms ? get_terms(['taxonomy' => 'category', 'hide_empty' => false, 'fields' => 'ids']) : [];
$tag_names = is_object_in_taxonomy($type, 'post_tag')
    ? get_terms(['taxonomy' => 'post_tag', 'hide_empty' => false, 'fields' => 'names']) : [];

$started = microtime(true);
wp_defer_term_counting(true);
wp_defer_comment_counting(true);
wp_suspend_cache_invalidation(true);

$batch = 200;
$created = 0;
$first = $last = null;
$base = (int) $wpdb->get_var($wpdb->prepare(
    "SELECT COUNT(*) FROM $wpdb->posts WHERE post_type = %s AND post_title LIKE %s",
    $type,
    'Seeded %'
));
$wpdb->query('START TRANSACTION');
for ($i = 1; $i <= $count; $i++) {
    $n = $base + $i;
    $args = [
        'post_type' => $type,
        'post_status' => 'publish',
        'post_title' => "Seeded $type $n",
        'post_name' => "seeded-$type-$n",
        'post_content' => "<!-- wp:paragraph -->\n<p>Seeded $type number $n, created by scripts/wordpress-e2e.sh seed.</p>\n<!-- /wp:paragraph -->",
        'post_excerpt' => "Seeded $type $n",
        'post_author' => $admin_id,
        'comment_status' => 'closed',
        'ping_status' => 'closed',
    ];
    if ($cat_ids) {
        $args['post_category'] = [$cat_ids[$n % count($cat_ids)]];
    }
    if ($tag_names) {
        $args['tags_input'] = [$tag_names[$n % count($tag_names)]];
    }
    $id = wp_insert_post(wp_slash($args), true);
    if (is_wp_error($id)) {
        $wpdb->query('ROLLBACK');
        e2e_fail("post $n: " . $id->get_error_message());
    }
    $first = $first ?? $id;
    $last = $id;
    $created++;
    if ($i % $batch === 0) {
        $wpdb->query('COMMIT');
        $wpdb->query('START TRANSACTION');
    }
}
$wpdb->query('COMMIT');

wp_suspend_cache_invalidation(false);
wp_defer_term_counting(false);
wp_defer_comment_counting(false);
clean_post_cache(0);
wp_cache_flush();

$total = (int) $wpdb->get_var($wpdb->prepare(
    "SELECT COUNT(*) FROM $wpdb->posts WHERE post_type = %s AND post_status = 'publish'",
    $type
));
e2e_out([
    'created' => $created,
    'total' => $total,
    'type' => $type,
    'first_id' => $first,
    'last_id' => $last,
    'seconds' => round(microtime(true) - $started, 3),
]);
