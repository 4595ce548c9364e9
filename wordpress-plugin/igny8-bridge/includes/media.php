<?php
/**
 * Media redelivery support: the service uploads an image with `POST /wp/v2/media` and the headers
 * `X-IGNY8-Source-SHA256` (sha256 of the bytes, 64 hex digits) and, optionally,
 * `X-IGNY8-Source-URL`; the plugin stores them in the attachment's meta within that same request,
 * and `GET /igny8/v1/media?source_sha256=` finds the attachment again, so a job interrupted after
 * an upload reuses it instead of uploading the image twice.
 *
 * @package Igny8_Bridge
 */

defined( 'ABSPATH' ) || exit;

define( 'IGNY8_BRIDGE_META_SOURCE_SHA256', '_igny8_source_sha256' );
define( 'IGNY8_BRIDGE_META_SOURCE_URL', '_igny8_source_url' );
const IGNY8_BRIDGE_SOURCE_URL_MAX = 2048;

/**
 * Registers the two attachment metas for the REST API.
 */
function igny8_bridge_register_media_meta(): void {
	// Edit context only: where the platform's copy came from is nobody else's business.
	$common = array(
		'type'          => 'string',
		'single'        => true,
		'show_in_rest'  => array( 'schema' => array( 'context' => array( 'edit' ) ) ),
		'auth_callback' => 'igny8_bridge_media_meta_auth',
	);
	register_post_meta(
		'attachment',
		IGNY8_BRIDGE_META_SOURCE_SHA256,
		array_merge( $common, array( 'sanitize_callback' => 'igny8_bridge_sanitize_sha256' ) )
	);
	register_post_meta(
		'attachment',
		IGNY8_BRIDGE_META_SOURCE_URL,
		array_merge( $common, array( 'sanitize_callback' => 'igny8_bridge_sanitize_source_url' ) )
	);
}
add_action( 'init', 'igny8_bridge_register_media_meta', 999 );

/**
 * auth_callback of the attachment metas: may upload files and edit this attachment.
 *
 * @param bool   $allowed  Default.
 * @param string $meta_key Meta key.
 * @param int    $post_id  Attachment id.
 */
function igny8_bridge_media_meta_auth( $allowed, $meta_key, $post_id ): bool {
	return current_user_can( 'upload_files' ) && current_user_can( 'edit_post', (int) $post_id );
}

/**
 * A lowercase sha256 hex digest, or '' when the value is not one.
 *
 * @param mixed $value Value.
 */
function igny8_bridge_sanitize_sha256( $value ): string {
	$value = is_scalar( $value ) ? strtolower( trim( (string) $value ) ) : '';
	return preg_match( '/^[0-9a-f]{64}$/', $value ) ? $value : '';
}

/**
 * An absolute http(s) URL of at most 2048 characters, or ''.
 *
 * @param mixed $value Value.
 */
function igny8_bridge_sanitize_source_url( $value ): string {
	$value = is_scalar( $value ) ? trim( (string) $value ) : '';
	if ( '' === $value || strlen( $value ) > IGNY8_BRIDGE_SOURCE_URL_MAX || ! igny8_bridge_is_http_url( $value ) ) {
		return '';
	}
	return esc_url_raw( $value, array( 'http', 'https' ) );
}

/**
 * Source headers of the upload being handled in this request (set before the controller runs).
 *
 * @param array|null $set New value (array{sha256: string, url: string}) or null to read.
 * @return array|null
 */
function igny8_bridge_pending_source( ?array $set = null ): ?array {
	static $pending = null;
	if ( null !== $set ) {
		$pending = $set ? $set : null;
	}
	return $pending;
}

/**
 * rest_dispatch_request (after the permission check, before the controller): on POST
 * /wp/v2/media, a malformed X-IGNY8-Source-* header is a 400 before anything is uploaded; valid
 * ones are kept for add_attachment below.
 *
 * @param mixed           $response Dispatch result so far (null: let the controller run).
 * @param WP_REST_Request $request  Request.
 * @return mixed
 */
function igny8_bridge_media_before_dispatch( $response, $request ) {
	igny8_bridge_pending_source( array() );
	if ( null !== $response || ! $request instanceof WP_REST_Request || 'POST' !== $request->get_method()
		|| ! preg_match( '#^/wp/v2/media/?$#', $request->get_route() ) ) {
		return $response;
	}
	$sha_header = $request->get_header( 'x_igny8_source_sha256' );
	$url_header = $request->get_header( 'x_igny8_source_url' );
	if ( null === $sha_header && null === $url_header ) {
		return $response;
	}
	$sha = igny8_bridge_sanitize_sha256( $sha_header );
	if ( '' === $sha ) {
		return new WP_Error(
			'igny8_bridge_invalid_source_sha256',
			__( 'X-IGNY8-Source-SHA256 must be the sha256 of the file: 64 hexadecimal digits.', 'igny8-bridge' ),
			array( 'status' => 400 )
		);
	}
	$url = '';
	if ( null !== $url_header && '' !== trim( (string) $url_header ) ) {
		$url = igny8_bridge_sanitize_source_url( $url_header );
		if ( '' === $url ) {
			return new WP_Error(
				'igny8_bridge_invalid_source_url',
				__( 'X-IGNY8-Source-URL must be an absolute http(s) URL of at most 2048 characters.', 'igny8-bridge' ),
				array( 'status' => 400 )
			);
		}
	}
	igny8_bridge_pending_source(
		array(
			'sha256' => $sha,
			'url'    => $url,
		)
	);
	return $response;
}
add_filter( 'rest_dispatch_request', 'igny8_bridge_media_before_dispatch', 10, 2 );

/**
 * Stores the pending source headers on an attachment.
 *
 * @param int $attachment_id Attachment id.
 */
function igny8_bridge_store_pending_source( int $attachment_id ): void {
	$pending = igny8_bridge_pending_source();
	if ( ! $pending || ! current_user_can( 'upload_files' ) || ! current_user_can( 'edit_post', $attachment_id ) ) {
		return;
	}
	update_post_meta( $attachment_id, IGNY8_BRIDGE_META_SOURCE_SHA256, $pending['sha256'] );
	if ( '' !== $pending['url'] ) {
		update_post_meta( $attachment_id, IGNY8_BRIDGE_META_SOURCE_URL, wp_slash( $pending['url'] ) );
	}
}

/**
 * add_attachment: the hash goes in right after the attachment row, before the rest of the
 * request (alt text, image sub-sizes) runs, so even a request that dies half-way leaves an
 * attachment the service can find by its hash.
 *
 * @param int $attachment_id Attachment id.
 */
function igny8_bridge_media_add_attachment( $attachment_id ): void {
	if ( defined( 'REST_REQUEST' ) && REST_REQUEST ) {
		igny8_bridge_store_pending_source( (int) $attachment_id );
	}
}
add_action( 'add_attachment', 'igny8_bridge_media_add_attachment' );

/**
 * rest_after_insert_attachment: the same, for a created attachment (add_attachment normally did
 * it already); the pending headers are then spent.
 *
 * @param WP_Post         $attachment Attachment.
 * @param WP_REST_Request $request    Request.
 * @param bool            $creating   True when created.
 */
function igny8_bridge_media_after_insert( $attachment, $request, $creating ): void {
	if ( $creating && $attachment instanceof WP_Post ) {
		igny8_bridge_store_pending_source( (int) $attachment->ID );
	}
	igny8_bridge_pending_source( array() );
}
add_action( 'rest_after_insert_attachment', 'igny8_bridge_media_after_insert', 10, 3 );

/**
 * rest_request_after_callbacks: headers of a request that failed before an attachment was made
 * are spent too.
 *
 * @param mixed $response Response.
 * @return mixed
 */
function igny8_bridge_media_after_callbacks( $response ) {
	igny8_bridge_pending_source( array() );
	return $response;
}
add_filter( 'rest_request_after_callbacks', 'igny8_bridge_media_after_callbacks' );

/**
 * Registers GET /igny8/v1/media?source_sha256=.
 */
function igny8_bridge_register_media_route(): void {
	register_rest_route(
		'igny8/v1',
		'/media',
		array(
			'methods'             => WP_REST_Server::READABLE,
			'callback'            => 'igny8_bridge_rest_media',
			'permission_callback' => 'igny8_bridge_rest_permission',
			'args'                => array(
				'source_sha256' => array(
					'required'          => true,
					'type'              => 'string',
					'pattern'           => '^[0-9a-fA-F]{64}$',
					'validate_callback' => 'rest_validate_request_arg',
					'sanitize_callback' => 'igny8_bridge_sanitize_sha256',
				),
			),
		)
	);
}
add_action( 'rest_api_init', 'igny8_bridge_register_media_route' );

/**
 * GET /igny8/v1/media?source_sha256=H: the attachments (any status but trash) uploaded with that
 * source hash, oldest first, at most 20.
 *
 * @param WP_REST_Request $request Request.
 * @return WP_REST_Response
 */
function igny8_bridge_rest_media( WP_REST_Request $request ) {
	$ids = get_posts(
		array(
			'post_type'        => 'attachment',
			'post_status'      => 'any',
			'meta_key'         => IGNY8_BRIDGE_META_SOURCE_SHA256, // phpcs:ignore WordPress.DB.SlowDBQuery
			'meta_value'       => (string) $request['source_sha256'], // phpcs:ignore WordPress.DB.SlowDBQuery
			'fields'           => 'ids',
			'orderby'          => 'ID',
			'order'            => 'ASC',
			'posts_per_page'   => 20,
			'no_found_rows'    => true,
			'suppress_filters' => true,
		)
	);
	$out = array();
	foreach ( $ids as $id ) {
		$meta  = wp_get_attachment_metadata( (int) $id );
		$out[] = array(
			'id'            => (int) $id,
			'source_url'    => (string) wp_get_attachment_url( (int) $id ),
			'sha256'        => (string) get_post_meta( (int) $id, IGNY8_BRIDGE_META_SOURCE_SHA256, true ),
			'media_details' => array(
				'width'  => is_array( $meta ) && isset( $meta['width'] ) ? (int) $meta['width'] : null,
				'height' => is_array( $meta ) && isset( $meta['height'] ) ? (int) $meta['height'] : null,
			),
		);
	}
	return rest_ensure_response( $out );
}
