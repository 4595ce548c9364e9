<?php
/**
 * Step 2 of a site install (scripts/wordpress-e2e.sh start), in a new PHP process after
 * install.php: flush rewrite rules for the pretty permalinks, replace WordPress's default content
 * with known sample content, create an Application Password for `admin`.
 *
 * Sample content: categories News (the default category, renamed from Uncategorized), Guides,
 * Reviews; tags alpha, beta, gamma; 5 published posts dated 5..1 days ago, each with one category
 * and one or two tags; 2 published pages (About, Contact); 1 draft post.
 *
 * Prints {"app_password", "wp_version", "posts": [...ids], "pages": [...], "draft": id}.
 */
require __DIR__ . '/lib.php';

global $wp_version;

$admin_id = e2e_admin_id();
if (!$admin_id) {
    e2e_fail('no admin user: did install.php run?');
}
wp_set_current_user($admin_id);

flush_rewrite_rules(false);

// Drop the default content ("Hello world!", "Sample Page", the Privacy Policy draft, its comment).
foreach (get_posts(['post_type' => 'any', 'post_status' => 'any', 'numberposts' => -1, 'fields' => 'ids']) as $id) {
    wp_delete_post($id, true);
}
// WordPress keeps one default category: make it "News" rather than "Uncategorized".
$default_cat = (int) get_option('default_category');
$r = wp_update_term($default_cat, 'category', ['name' => 'News', 'slug' => 'news']);
if (is_wp_error($r)) {
    e2e_fail('renaming the default category: ' . $r->get_error_message());
}
$cats = ['news' => $default_cat];
foreach (['Guides' => 'guides', 'Reviews' => 'reviews'] as $name => $slug) {
    $t = wp_insert_term($name, 'category', ['slug' => $slug, 'description' => "$name (e2e sample category)"]);
    if (is_wp_error($t)) {
        e2e_fail("category $name: " . $t->get_error_message());
    }
    $cats[$slug] = (int) $t['term_id'];
}
foreach (['alpha', 'beta', 'gamma'] as $tag) {
    $t = wp_insert_term($tag, 'post_tag', ['slug' => $tag]);
    if (is_wp_error($t)) {
        e2e_fail("tag $tag: " . $t->get_error_message());
    }
}

$samples = [
    ['Getting started with IGNY8', 'news', ['alpha']],
    ['Ten tips for better headlines', 'guides', ['alpha', 'beta']],
    ['Reviewing the new editor', 'reviews', ['beta']],
    ['How sync works', 'guides', ['gamma']],
    ['Release notes', 'news', ['beta', 'gamma']],
];
$posts = [];
foreach ($samples as $i => [$title, $cat, $tags]) {
    $days_ago = count($samples) - $i;
    $date_gmt = gmdate('Y-m-d H:i:s', time() - $days_ago * DAY_IN_SECONDS);
    $id = wp_insert_post([
        'post_type' => 'post',
        'post_status' => 'publish',
        'post_title' => $title,
        'post_excerpt' => "Excerpt of \"$title\".",
        'post_content' => "<!-- wp:paragraph -->\n<p>This is <strong>$title</strong>, sample post " . ($i + 1) . " of the e2e site.</p>\n<!-- /wp:paragraph -->\n\n<!-- wp:heading -->\n<h2>Section</h2>\n<!-- /wp:heading -->\n\n<!-- wp:list -->\n<ul><li>one</li><li>two</li></ul>\n<!-- /wp:list -->",
        'post_author' => $admin_id,
        'post_date' => get_date_from_gmt($date_gmt),
        'post_date_gmt' => $date_gmt,
        'post_category' => [$cats[$cat]],
        'tags_input' => $tags,
    ], true);
    if (is_wp_error($id)) {
        e2e_fail("post $title: " . $id->get_error_message());
    }
    $posts[] = $id;
}
$pages = [];
foreach (['About' => 'About this e2e test site.', 'Contact' => 'Write to admin@example.test.'] as $title => $text) {
    $id = wp_insert_post([
        'post_type' => 'page',
        'post_status' => 'publish',
        'post_title' => $title,
        'post_content' => "<!-- wp:paragraph -->\n<p>$text</p>\n<!-- /wp:paragraph -->",
        'post_author' => $admin_id,
    ], true);
    if (is_wp_error($id)) {
        e2e_fail("page $title: " . $id->get_error_message());
    }
    $pages[] = $id;
}
$draft = wp_insert_post([
    'post_type' => 'post',
    'post_status' => 'draft',
    'post_title' => 'Unfinished draft',
    'post_content' => "<!-- wp:paragraph -->\n<p>Not published yet.</p>\n<!-- /wp:paragraph -->",
    'post_author' => $admin_id,
    'post_category' => [$cats['guides']],
], true);
if (is_wp_error($draft)) {
    e2e_fail('draft: ' . $draft->get_error_message());
}

if (!wp_is_application_passwords_available_for_user($admin_id)) {
    e2e_fail('Application Passwords are not available (is WP_ENVIRONMENT_TYPE "local" in wp-config.php?)');
}
$created = WP_Application_Passwords::create_new_application_password($admin_id, ['name' => 'igny8-e2e']);
if (is_wp_error($created)) {
    e2e_fail('application password: ' . $created->get_error_message());
}

e2e_out([
    'app_password' => $created[0],
    'wp_version' => $wp_version,
    'posts' => $posts,
    'pages' => $pages,
    'draft' => $draft,
]);
