<?php
/**
 * Uninstall: remove every option, transient, cron event and the outbox table of the plugin.
 * The _igny8_content_id post meta is kept on purpose: it links posts to the service's content
 * and is needed again if the plugin is reinstalled.
 *
 * @package Igny8_Bridge
 */

defined( 'WP_UNINSTALL_PLUGIN' ) || exit;
defined( 'ABSPATH' ) || exit;

global $wpdb;

$igny8_bridge_options = array(
	'igny8_bridge_service_url',
	'igny8_bridge_site_id',
	'igny8_bridge_api_key',
	'igny8_bridge_integration_id',
	'igny8_bridge_structure_hash',
	'igny8_bridge_last_structure_push',
	'igny8_bridge_last_connection',
	'igny8_bridge_outbox_due',
	'igny8_bridge_db_version',
);
foreach ( $igny8_bridge_options as $igny8_bridge_option ) {
	delete_option( $igny8_bridge_option );
}

delete_transient( 'igny8_bridge_drain_lock' );
delete_transient( 'igny8_bridge_structure_lock' );
// Per-user notice transients.
$wpdb->query( "DELETE FROM {$wpdb->options} WHERE option_name LIKE '\\_transient\\_igny8\\_bridge\\_%' OR option_name LIKE '\\_transient\\_timeout\\_igny8\\_bridge\\_%'" ); // phpcs:ignore WordPress.DB

wp_clear_scheduled_hook( 'igny8_bridge_drain_outbox_event' );
wp_clear_scheduled_hook( 'igny8_bridge_daily_structure_event' );

$wpdb->query( "DROP TABLE IF EXISTS {$wpdb->prefix}igny8_outbox" ); // phpcs:ignore WordPress.DB
