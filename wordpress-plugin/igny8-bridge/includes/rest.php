<?php
/**
 * REST routes under /wp-json/igny8/v1/, authenticated by the site's API key
 * (X-API-Key: <key> or Authorization: Bearer <key>).
 *
 * @package Igny8_Bridge
 */

defined( 'ABSPATH' ) || exit;

/**
 * Registers the routes.
 */
function igny8_bridge_register_routes(): void {
	register_rest_route(
		'igny8/v1',
		'/status',
		array(
			'methods'             => WP_REST_Server::READABLE,
			'callback'            => 'igny8_bridge_rest_status',
			'permission_callback' => 'igny8_bridge_rest_permission',
		)
	);
	register_rest_route(
		'igny8/v1',
		'/structure',
		array(
			'methods'             => WP_REST_Server::READABLE,
			'callback'            => 'igny8_bridge_rest_structure',
			'permission_callback' => 'igny8_bridge_rest_permission',
		)
	);
	register_rest_route(
		'igny8/v1',
		'/posts',
		array(
			'methods'             => WP_REST_Server::READABLE,
			'callback'            => 'igny8_bridge_rest_posts',
			'permission_callback' => 'igny8_bridge_rest_permission',
			'args'                => array(
				'content_id' => array(
					'required'          => true,
					'type'              => 'integer',
					'minimum'           => 1,
					'validate_callback' => 'rest_validate_request_arg',
					'sanitize_callback' => 'absint',
				),
			),
		)
	);
}
add_action( 'rest_api_init', 'igny8_bridge_register_routes' );

/**
 * Key presented by the caller ('' when none).
 *
 * @param WP_REST_Request $request Request.
 */
function igny8_bridge_request_key( WP_REST_Request $request ): string {
	$key = (string) $request->get_header( 'x_api_key' );
	if ( '' !== trim( $key ) ) {
		return trim( $key );
	}
	$auth = (string) $request->get_header( 'authorization' );
	if ( preg_match( '/^\s*Bearer\s+(\S+)\s*$/i', $auth, $m ) ) {
		return $m[1];
	}
	return '';
}

/**
 * permission_callback: constant-time comparison with the stored key; 401 otherwise.
 *
 * @param WP_REST_Request $request Request.
 * @return true|WP_Error
 */
function igny8_bridge_rest_permission( WP_REST_Request $request ) {
	$stored   = igny8_bridge_get_api_key();
	$provided = igny8_bridge_request_key( $request );
	if ( '' !== $stored && '' !== $provided && hash_equals( $stored, $provided ) ) {
		return true;
	}
	return new WP_Error(
		'igny8_bridge_unauthorized',
		'' === $provided ? __( 'Missing API key.', 'igny8-bridge' ) : __( 'Invalid API key.', 'igny8-bridge' ),
		array( 'status' => 401 )
	);
}

/**
 * GET /igny8/v1/status
 *
 * @return WP_REST_Response
 */
function igny8_bridge_rest_status() {
	$integration_id = igny8_bridge_get_integration_id();
	return rest_ensure_response(
		array(
			'plugin_version'    => IGNY8_BRIDGE_VERSION,
			'wordpress_version' => get_bloginfo( 'version' ),
			'php_version'       => PHP_VERSION,
			'site_name'         => get_bloginfo( 'name' ),
			'site_url'          => home_url(),
			'post_types'        => array_keys( igny8_bridge_enabled_post_types() ),
			'connected'         => igny8_bridge_is_connected(),
			'integration_id'    => $integration_id > 0 ? $integration_id : null,
		)
	);
}

/**
 * GET /igny8/v1/structure
 *
 * @return WP_REST_Response
 */
function igny8_bridge_rest_structure() {
	return rest_ensure_response( igny8_bridge_build_structure( true ) );
}

/**
 * GET /igny8/v1/posts?content_id=N: the posts (any status but trash, any REST post type) whose
 * _igny8_content_id meta is N, oldest first. The service asks before creating a post again after
 * an interrupted push, so a redelivered job never creates a duplicate.
 *
 * @param WP_REST_Request $request Request.
 * @return WP_REST_Response
 */
function igny8_bridge_rest_posts( WP_REST_Request $request ) {
	$types = get_post_types( array( 'show_in_rest' => true ) );
	unset( $types['attachment'] );
	$ids   = get_posts(
		array(
			'post_type'        => array_values( $types ),
			'post_status'      => 'any',
			'meta_key'         => IGNY8_BRIDGE_META_CONTENT_ID, // phpcs:ignore WordPress.DB.SlowDBQuery
			'meta_value'       => (string) absint( $request['content_id'] ), // phpcs:ignore WordPress.DB.SlowDBQuery
			'fields'           => 'ids',
			'orderby'          => 'ID',
			'order'            => 'ASC',
			'posts_per_page'   => 20,
			'no_found_rows'    => true,
			'suppress_filters' => true,
		)
	);
	$posts = array();
	foreach ( $ids as $id ) {
		$post = get_post( $id );
		if ( $post ) {
			$posts[] = array(
				'id'           => (int) $post->ID,
				'type'         => $post->post_type,
				'status'       => $post->post_status,
				'modified_gmt' => mysql_to_rfc3339( $post->post_modified_gmt ),
			);
		}
	}
	return rest_ensure_response( $posts );
}
