<?php
/**
 * Step 1 of a site install (scripts/wordpress-e2e.sh start): run WordPress's installer
 * non-interactively and set pretty permalinks. Rewrite rules are flushed by setup.php, in a
 * later PHP process, or taxonomy archives 404.
 *
 * Environment: as lib.php, plus WP_E2E_NAME. Prints {"admin_user", "admin_password", "user_id"}.
 */
define('WP_INSTALLING', true);

// No "your new site" e-mail (this file is loaded before upgrade.php, which only defines it if missing).
function wp_new_blog_notification($blog_title, $blog_url, $user_id, $password)
{
}

require __DIR__ . '/lib.php';
require_once ABSPATH . 'wp-admin/includes/upgrade.php';

if (is_blog_installed()) {
    e2e_fail('WordPress is already installed in database ' . DB_NAME);
}

$e2e_password = wp_generate_password(24, false);
$e2e_result = wp_install(
    'IGNY8 E2E ' . (getenv('WP_E2E_NAME') ?: 'site'),
    'admin',
    'admin@example.test',
    true,
    '',
    wp_slash($e2e_password),
    'en_US'
);
if (empty($e2e_result['user_id'])) {
    e2e_fail('wp_install() did not create the admin user');
}

update_option('permalink_structure', '/%postname%/');
update_option('blogdescription', 'Throwaway WordPress site for end-to-end tests');
update_option('timezone_string', 'UTC');
update_option('gmt_offset', 0);
// No pings to the outside world on publish.
update_option('ping_sites', '');
update_option('default_pingback_flag', 0);
update_option('default_ping_status', 'closed');

e2e_out([
    'admin_user' => 'admin',
    'admin_password' => $e2e_password,
    'user_id' => (int) $e2e_result['user_id'],
]);
