<?php
/**
 * Activates the plugin in wp-content/plugins/igny8-bridge (scripts/wordpress-e2e.sh start
 * --activate-plugin). The plugin's main file is the one with a "Plugin Name:" header
 * (igny8-bridge.php preferred). Prints {"plugin", "active"}.
 */
require __DIR__ . '/lib.php';
require_once ABSPATH . 'wp-admin/includes/plugin.php';

$slug = 'igny8-bridge';
$found = get_plugins('/' . $slug);
if (!$found) {
    e2e_fail("no plugin (no PHP file with a 'Plugin Name:' header) in wp-content/plugins/$slug");
}
$main = isset($found["$slug.php"]) ? "$slug.php" : array_key_first($found);
$file = "$slug/$main";

wp_set_current_user(e2e_admin_id());
if (!is_plugin_active($file)) {
    $result = activate_plugin($file);
    if (is_wp_error($result)) {
        e2e_fail("activating $file failed: " . $result->get_error_message()
            . ($result->get_error_data() ? ' ' . print_r($result->get_error_data(), true) : ''));
    }
}
e2e_out(['plugin' => $file, 'active' => is_plugin_active($file)]);
