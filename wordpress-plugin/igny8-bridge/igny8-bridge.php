<?php
/**
 * Plugin Name:       IGNY8 Bridge
 * Description:       Connects this WordPress site to the IGNY8 Integration Service: onboarding, site structure push, signed status/metadata webhooks with a retry queue, authenticated REST endpoints, SEO fields (Yoast SEO, Rank Math or its own head tags) and media redelivery support.
 * Version:           1.1.0
 * Requires at least: 6.1
 * Requires PHP:      8.0
 * Author:            IGNY8
 * License:           GPLv2 or later
 * Text Domain:       igny8-bridge
 *
 * @package Igny8_Bridge
 */

defined( 'ABSPATH' ) || exit;

define( 'IGNY8_BRIDGE_VERSION', '1.1.0' );
define( 'IGNY8_BRIDGE_DB_VERSION', '1' );
define( 'IGNY8_BRIDGE_FILE', __FILE__ );
define( 'IGNY8_BRIDGE_DIR', __DIR__ );

// Option names (also removed by uninstall.php).
define( 'IGNY8_BRIDGE_OPT_SERVICE_URL', 'igny8_bridge_service_url' );
define( 'IGNY8_BRIDGE_OPT_SITE_ID', 'igny8_bridge_site_id' );
define( 'IGNY8_BRIDGE_OPT_API_KEY', 'igny8_bridge_api_key' );
define( 'IGNY8_BRIDGE_OPT_INTEGRATION_ID', 'igny8_bridge_integration_id' );
define( 'IGNY8_BRIDGE_OPT_STRUCTURE_HASH', 'igny8_bridge_structure_hash' );
define( 'IGNY8_BRIDGE_OPT_LAST_STRUCTURE_PUSH', 'igny8_bridge_last_structure_push' );
define( 'IGNY8_BRIDGE_OPT_LAST_CONNECTION', 'igny8_bridge_last_connection' );
define( 'IGNY8_BRIDGE_OPT_OUTBOX_DUE', 'igny8_bridge_outbox_due' );
define( 'IGNY8_BRIDGE_OPT_DB_VERSION', 'igny8_bridge_db_version' );

// Post meta holding the service's Content id; set by the service through the REST API.
define( 'IGNY8_BRIDGE_META_CONTENT_ID', '_igny8_content_id' );

// Cron hooks.
define( 'IGNY8_BRIDGE_CRON_DRAIN', 'igny8_bridge_drain_outbox_event' );
define( 'IGNY8_BRIDGE_CRON_STRUCTURE', 'igny8_bridge_daily_structure_event' );
define( 'IGNY8_BRIDGE_CRON_SCHEDULE', 'igny8_bridge_every_minute' );

require_once IGNY8_BRIDGE_DIR . '/includes/client.php';
require_once IGNY8_BRIDGE_DIR . '/includes/outbox.php';
require_once IGNY8_BRIDGE_DIR . '/includes/structure.php';
require_once IGNY8_BRIDGE_DIR . '/includes/webhooks.php';
require_once IGNY8_BRIDGE_DIR . '/includes/rest.php';
require_once IGNY8_BRIDGE_DIR . '/includes/seo.php';
require_once IGNY8_BRIDGE_DIR . '/includes/media.php';
require_once IGNY8_BRIDGE_DIR . '/includes/settings.php';

/**
 * Adds the one-minute cron schedule used by the outbox drain.
 *
 * @param array $schedules Existing schedules.
 * @return array
 */
function igny8_bridge_cron_schedules( $schedules ) {
	if ( ! isset( $schedules[ IGNY8_BRIDGE_CRON_SCHEDULE ] ) ) {
		$schedules[ IGNY8_BRIDGE_CRON_SCHEDULE ] = array(
			'interval' => MINUTE_IN_SECONDS,
			'display'  => __( 'Every minute (IGNY8 Bridge)', 'igny8-bridge' ),
		);
	}
	return $schedules;
}
add_filter( 'cron_schedules', 'igny8_bridge_cron_schedules' );

/**
 * Schedules the plugin's recurring cron events when missing.
 */
function igny8_bridge_schedule_events(): void {
	if ( ! wp_next_scheduled( IGNY8_BRIDGE_CRON_DRAIN ) ) {
		wp_schedule_event( time() + MINUTE_IN_SECONDS, IGNY8_BRIDGE_CRON_SCHEDULE, IGNY8_BRIDGE_CRON_DRAIN );
	}
	if ( ! wp_next_scheduled( IGNY8_BRIDGE_CRON_STRUCTURE ) ) {
		wp_schedule_event( time() + HOUR_IN_SECONDS, 'daily', IGNY8_BRIDGE_CRON_STRUCTURE );
	}
}

/**
 * Removes the plugin's cron events.
 */
function igny8_bridge_unschedule_events(): void {
	wp_clear_scheduled_hook( IGNY8_BRIDGE_CRON_DRAIN );
	wp_clear_scheduled_hook( IGNY8_BRIDGE_CRON_STRUCTURE );
}

/**
 * Creates the options read on every request (autoloaded), so missing options cost no query.
 * add_option() never overwrites existing values.
 */
function igny8_bridge_add_default_options(): void {
	add_option( IGNY8_BRIDGE_OPT_SERVICE_URL, '', '', true );
	add_option( IGNY8_BRIDGE_OPT_SITE_ID, 0, '', true );
	add_option( IGNY8_BRIDGE_OPT_API_KEY, '', '', true );
	add_option( IGNY8_BRIDGE_OPT_INTEGRATION_ID, 0, '', true );
	add_option( IGNY8_BRIDGE_OPT_STRUCTURE_HASH, '', '', true );
	add_option( IGNY8_BRIDGE_OPT_OUTBOX_DUE, 0, '', true );
}

/**
 * Activation: create the outbox table, schedule cron, push the structure when already configured.
 */
function igny8_bridge_activate(): void {
	igny8_bridge_add_default_options();
	igny8_bridge_install_table();
	igny8_bridge_schedule_events();
	if ( igny8_bridge_is_connected() ) {
		igny8_bridge_push_structure();
	}
}
register_activation_hook( __FILE__, 'igny8_bridge_activate' );

/**
 * Deactivation: stop the cron events (options and the outbox table stay until uninstall).
 */
function igny8_bridge_deactivate(): void {
	igny8_bridge_unschedule_events();
	delete_transient( 'igny8_bridge_drain_lock' );
	delete_transient( 'igny8_bridge_structure_lock' );
}
register_deactivation_hook( __FILE__, 'igny8_bridge_deactivate' );

/**
 * Upgrades without re-activation (e.g. files replaced in place): make sure table and cron exist.
 */
function igny8_bridge_maybe_upgrade(): void {
	if ( get_option( IGNY8_BRIDGE_OPT_DB_VERSION ) !== IGNY8_BRIDGE_DB_VERSION ) {
		igny8_bridge_add_default_options();
		igny8_bridge_install_table();
	}
}
add_action( 'plugins_loaded', 'igny8_bridge_maybe_upgrade' );

/**
 * Keeps the cron events scheduled (cheap: the cron array is autoloaded).
 */
function igny8_bridge_ensure_events(): void {
	if ( igny8_bridge_is_configured() ) {
		igny8_bridge_schedule_events();
	}
}
add_action( 'wp_loaded', 'igny8_bridge_ensure_events', 5 );

add_action( IGNY8_BRIDGE_CRON_DRAIN, 'igny8_bridge_cron_drain' );
add_action( IGNY8_BRIDGE_CRON_STRUCTURE, 'igny8_bridge_cron_push_structure' );
