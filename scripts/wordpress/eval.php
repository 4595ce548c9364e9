<?php
/**
 * Runs PHP code inside one e2e site's WordPress (scripts/wordpress-e2e.sh eval): loads
 * wp-load.php, makes `admin` the current user (call wp_set_current_user(0) to act anonymously),
 * then includes the file given as the first argument. Whatever the code prints is the output.
 */
require __DIR__ . '/lib.php';

if (empty($argv[1]) || !is_file($argv[1])) {
    e2e_fail('usage: eval.php FILE');
}
wp_set_current_user(e2e_admin_id());
unset($e2e_root, $e2e_url);
require $argv[1];
