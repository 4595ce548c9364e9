<?php
/**
 * Site structure (post types and taxonomies) payload and its push to the service.
 *
 * @package Igny8_Bridge
 */

defined( 'ABSPATH' ) || exit;

/**
 * Post type objects the plugin reports: show_in_rest and public, except attachments (internal
 * REST types such as wp_block, wp_template or nav_menu_item are not public).
 * Filter `igny8_bridge_post_types` (array of slugs) to change the list.
 *
 * @return WP_Post_Type[] keyed by slug.
 */
function igny8_bridge_enabled_post_types(): array {
	$types = get_post_types(
		array(
			'show_in_rest' => true,
			'public'       => true,
		),
		'objects'
	);
	unset( $types['attachment'] );

	$slugs = apply_filters( 'igny8_bridge_post_types', array_keys( $types ) );
	$out   = array();
	foreach ( (array) $slugs as $slug ) {
		$obj = get_post_type_object( (string) $slug );
		if ( $obj && $obj->show_in_rest ) {
			$out[ $obj->name ] = $obj;
		}
	}
	return $out;
}

/**
 * Taxonomy objects the plugin reports: show_in_rest and public, attached to a reported post type.
 * Filter `igny8_bridge_taxonomies` (array of slugs) to change the list.
 *
 * @param array|null $post_types Reported post types (defaults to igny8_bridge_enabled_post_types()).
 * @return WP_Taxonomy[] keyed by slug.
 */
function igny8_bridge_enabled_taxonomies( ?array $post_types = null ): array {
	$post_types = $post_types ?? igny8_bridge_enabled_post_types();
	$taxes      = get_taxonomies(
		array(
			'show_in_rest' => true,
			'public'       => true,
		),
		'objects'
	);
	$keep = array();
	foreach ( $taxes as $slug => $tax ) {
		if ( array_intersect( (array) $tax->object_type, array_keys( $post_types ) ) ) {
			$keep[] = $slug;
		}
	}

	$slugs = apply_filters( 'igny8_bridge_taxonomies', $keep );
	$out   = array();
	foreach ( (array) $slugs as $slug ) {
		$obj = get_taxonomy( (string) $slug );
		if ( $obj && $obj->show_in_rest ) {
			$out[ $obj->name ] = $obj;
		}
	}
	return $out;
}

/**
 * The structure payload.
 *
 * @param bool $with_volatile Include published counts and the timestamp (false for change detection).
 * @return array{post_types: array, taxonomies: array, plugin_connection_enabled: bool, two_way_sync_enabled: bool, seo_plugin: string, timestamp?: string}
 */
function igny8_bridge_build_structure( bool $with_volatile = true ): array {
	$post_types = igny8_bridge_enabled_post_types();
	$taxonomies = igny8_bridge_enabled_taxonomies( $post_types );

	$pt_out = array();
	foreach ( $post_types as $slug => $pt ) {
		$item = array(
			'label'      => (string) $pt->label,
			'rest_base'  => (string) ( $pt->rest_base ? $pt->rest_base : $slug ),
			'taxonomies' => array_values( array_intersect( get_object_taxonomies( $slug ), array_keys( $taxonomies ) ) ),
		);
		if ( $with_volatile ) {
			$counts        = wp_count_posts( $slug );
			$item['count'] = isset( $counts->publish ) ? (int) $counts->publish : 0;
		}
		$pt_out[ $slug ] = $item;
	}

	$tax_out = array();
	foreach ( $taxonomies as $slug => $tax ) {
		$tax_out[ $slug ] = array(
			'label'        => (string) $tax->label,
			'rest_base'    => (string) ( $tax->rest_base ? $tax->rest_base : $slug ),
			'object_types' => array_values( array_intersect( (array) $tax->object_type, array_keys( $post_types ) ) ),
			'hierarchical' => (bool) $tax->hierarchical,
		);
	}

	$structure = array(
		// (object) keeps an empty map a JSON object rather than [].
		'post_types'                => $pt_out ? $pt_out : new stdClass(),
		'taxonomies'                => $tax_out ? $tax_out : new stdClass(),
		'plugin_connection_enabled' => true,
		'two_way_sync_enabled'      => true,
		// Where the service's SEO fields go: 'yoast', 'rank_math' or 'none' (printed by this plugin).
		'seo_plugin'                => igny8_bridge_seo_plugin(),
	);
	if ( $with_volatile ) {
		$structure['timestamp'] = igny8_bridge_now_iso();
	}
	return $structure;
}

/**
 * Hash of the structure without counts and timestamp: changes only when post types or
 * taxonomies (or their labels/rest bases/relations) or the active SEO plugin change.
 */
function igny8_bridge_structure_hash(): string {
	return md5( (string) wp_json_encode( igny8_bridge_build_structure( false ) ) );
}

/**
 * Pushes the structure to POST {service}/api/v1/integration/integrations/{id}/update_site_structure/.
 * Records the result in the option igny8_bridge_last_structure_push and, on success, the
 * structure hash in igny8_bridge_structure_hash.
 *
 * @return array{success: bool, status: int, message: string}
 */
function igny8_bridge_push_structure(): array {
	if ( ! igny8_bridge_is_connected() ) {
		return array(
			'success' => false,
			'status'  => 0,
			'message' => __( 'Not connected: save the settings first.', 'igny8-bridge' ),
		);
	}

	$hash   = igny8_bridge_structure_hash();
	$url    = igny8_bridge_service_endpoint( 'integration/integrations/' . igny8_bridge_get_integration_id() . '/update_site_structure/' );
	$body   = (string) wp_json_encode( igny8_bridge_build_structure( true ), JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE );
	$result = igny8_bridge_http_post_json( $url, $body, array( 'X-API-Key' => igny8_bridge_get_api_key() ) );

	$out = array(
		'success' => $result['ok'],
		'status'  => $result['status'],
		'message' => $result['ok'] ? __( 'Site structure sent.', 'igny8-bridge' ) : $result['message'],
	);

	update_option(
		IGNY8_BRIDGE_OPT_LAST_STRUCTURE_PUSH,
		array(
			'time'    => igny8_bridge_now_iso(),
			'success' => $out['success'],
			'status'  => $out['status'],
			'message' => $out['message'],
		),
		false
	);

	if ( $result['ok'] ) {
		update_option( IGNY8_BRIDGE_OPT_STRUCTURE_HASH, $hash, true );
	} else {
		error_log( sprintf( 'IGNY8 Bridge: structure push failed: %s', $out['message'] ) ); // phpcs:ignore WordPress.PHP.DevelopmentFunctions.error_log_error_log
	}
	return $out;
}

/**
 * On wp_loaded (all post types and taxonomies registered): when the structure hash differs from
 * the last pushed one, push once at the end of this request. A transient lock keeps concurrent
 * requests from pushing together and throttles retries after a failure (10 minutes).
 */
function igny8_bridge_detect_structure_change(): void {
	static $scheduled = false;
	if ( $scheduled || ! igny8_bridge_is_connected() ) {
		return;
	}
	if ( get_option( IGNY8_BRIDGE_OPT_STRUCTURE_HASH ) === igny8_bridge_structure_hash() ) {
		return;
	}
	if ( get_transient( 'igny8_bridge_structure_lock' ) ) {
		return;
	}
	set_transient( 'igny8_bridge_structure_lock', 1, MINUTE_IN_SECONDS );
	$scheduled = true;
	add_action( 'shutdown', 'igny8_bridge_shutdown_push_structure', 25 );
}
add_action( 'wp_loaded', 'igny8_bridge_detect_structure_change', 100 );

/**
 * Shutdown part of the change detection.
 */
function igny8_bridge_shutdown_push_structure(): void {
	static $done = false;
	if ( $done ) {
		return;
	}
	$done   = true;
	$result = igny8_bridge_push_structure();
	if ( $result['success'] ) {
		delete_transient( 'igny8_bridge_structure_lock' );
	} else {
		set_transient( 'igny8_bridge_structure_lock', 1, 10 * MINUTE_IN_SECONDS );
	}
}

/**
 * Daily safety-net push.
 */
function igny8_bridge_cron_push_structure(): void {
	if ( igny8_bridge_is_connected() ) {
		igny8_bridge_push_structure();
	}
}
