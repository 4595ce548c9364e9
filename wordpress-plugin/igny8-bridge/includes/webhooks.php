<?php
/**
 * Status and metadata webhooks for posts the service knows (post meta _igny8_content_id).
 *
 * One save fires save_post, transition_post_status, set_object_terms and several meta hooks;
 * the hooks only mark the post in a per-request queue (static array keyed by post id) and the
 * queue is sent once at shutdown, so each post gets at most one status and one metadata
 * delivery per request. Deletions are captured immediately (the post is gone at shutdown).
 *
 * @package Igny8_Bridge
 */

defined( 'ABSPATH' ) || exit;

const IGNY8_BRIDGE_STATUS_PATH   = 'integration/webhooks/wordpress/status/';
const IGNY8_BRIDGE_METADATA_PATH = 'integration/webhooks/wordpress/metadata/';

/**
 * Registers _igny8_content_id for every reported post type so the service can set it over the
 * REST API (Application Password of a user who can edit the post).
 */
function igny8_bridge_register_meta(): void {
	$types = get_post_types( array( 'show_in_rest' => true ) );
	unset( $types['attachment'] );
	foreach ( $types as $post_type ) {
		register_post_meta(
			$post_type,
			IGNY8_BRIDGE_META_CONTENT_ID,
			array(
				'type'              => 'integer',
				'single'            => true,
				'show_in_rest'      => true,
				'sanitize_callback' => 'absint',
				'auth_callback'     => 'igny8_bridge_meta_auth',
			)
		);
	}
}
add_action( 'init', 'igny8_bridge_register_meta', 999 );

/**
 * auth_callback for the content id meta.
 *
 * @param bool   $allowed  Default.
 * @param string $meta_key Meta key.
 * @param int    $post_id  Post id.
 */
function igny8_bridge_meta_auth( $allowed, $meta_key, $post_id ): bool {
	return current_user_can( 'edit_post', (int) $post_id );
}

/**
 * The service's content id of a post (0 when the post is not known to the service).
 *
 * @param int $post_id Post id.
 */
function igny8_bridge_get_content_id( int $post_id ): int {
	return absint( get_post_meta( $post_id, IGNY8_BRIDGE_META_CONTENT_ID, true ) );
}

/**
 * Per-request queue. Keys 'status' and 'metadata' map post id => true (build at shutdown) or a
 * ready payload array (deletions).
 *
 * @return array
 */
function &igny8_bridge_queue(): array {
	static $queue = array(
		'status'   => array(),
		'metadata' => array(),
	);
	return $queue;
}

/**
 * Marks a post for a webhook at shutdown.
 *
 * @param string     $kind    'status' or 'metadata'.
 * @param int        $post_id Post id.
 * @param array|null $payload Ready payload (overrides the shutdown build), or null.
 */
function igny8_bridge_enqueue( string $kind, int $post_id, ?array $payload = null ): void {
	static $hooked = false;
	$queue = &igny8_bridge_queue();
	if ( null !== $payload ) {
		$queue[ $kind ][ $post_id ] = $payload;
	} elseif ( ! isset( $queue[ $kind ][ $post_id ] ) ) {
		$queue[ $kind ][ $post_id ] = true;
	}
	if ( ! $hooked ) {
		$hooked = true;
		add_action( 'shutdown', 'igny8_bridge_flush_webhooks', 20 );
	}
}

/**
 * True for posts whose changes may be reported (no revisions/autosaves).
 *
 * @param WP_Post|null $post Post.
 */
function igny8_bridge_is_trackable_post( $post ): bool {
	return $post instanceof WP_Post
		&& 'revision' !== $post->post_type
		&& ! wp_is_post_revision( $post )
		&& ! wp_is_post_autosave( $post );
}

/**
 * transition_post_status: covers publish/unpublish, trash and untrash. The content id is checked
 * at shutdown because the REST API sets post meta after the post was inserted.
 *
 * @param string  $new_status New status.
 * @param string  $old_status Old status.
 * @param WP_Post $post       Post.
 */
function igny8_bridge_on_transition( $new_status, $old_status, $post ): void {
	if ( igny8_bridge_is_trackable_post( $post ) && 'auto-draft' !== $new_status ) {
		igny8_bridge_enqueue( 'status', (int) $post->ID );
	}
}
add_action( 'transition_post_status', 'igny8_bridge_on_transition', 10, 3 );

/**
 * before_delete_post: the payload is built now, while the post and its meta still exist.
 *
 * @param int $post_id Post id.
 */
function igny8_bridge_on_before_delete( $post_id ): void {
	$post = get_post( (int) $post_id );
	if ( ! igny8_bridge_is_trackable_post( $post ) ) {
		return;
	}
	$content_id = igny8_bridge_get_content_id( (int) $post_id );
	if ( $content_id <= 0 ) {
		return;
	}
	$payload                = igny8_bridge_status_payload( $post, $content_id );
	$payload['post_status'] = 'deleted';
	$payload['post_url']    = null;
	$payload['modified_gmt'] = igny8_bridge_now_iso();
	igny8_bridge_enqueue( 'status', (int) $post_id, $payload );
	$queue = &igny8_bridge_queue();
	unset( $queue['metadata'][ (int) $post_id ] );
}
add_action( 'before_delete_post', 'igny8_bridge_on_before_delete', 10, 1 );

/**
 * set_object_terms: only when the term set really changed (wp_insert_post re-sets categories on
 * every save).
 *
 * @param int    $object_id  Object id.
 * @param array  $terms      Terms.
 * @param array  $tt_ids     New term taxonomy ids.
 * @param string $taxonomy   Taxonomy.
 * @param bool   $append     Append mode.
 * @param array  $old_tt_ids Previous term taxonomy ids.
 */
function igny8_bridge_on_set_terms( $object_id, $terms, $tt_ids, $taxonomy, $append, $old_tt_ids ): void {
	$new = array_map( 'intval', (array) $tt_ids );
	$old = array_map( 'intval', (array) $old_tt_ids );
	sort( $new );
	sort( $old );
	if ( $append ) {
		$new = array_values( array_unique( array_merge( $old, $new ) ) );
		sort( $new );
	}
	if ( $new === $old ) {
		return;
	}
	$post = get_post( (int) $object_id );
	if ( igny8_bridge_is_trackable_post( $post ) ) {
		igny8_bridge_enqueue( 'metadata', (int) $object_id );
	}
}
add_action( 'set_object_terms', 'igny8_bridge_on_set_terms', 10, 6 );

/**
 * Meta keys whose changes are not reported as metadata.
 *
 * @param string $meta_key Meta key.
 */
function igny8_bridge_is_ignored_meta_key( string $meta_key ): bool {
	if ( str_starts_with( $meta_key, '_igny8_' ) || str_starts_with( $meta_key, 'igny8_' ) ) {
		return true;
	}
	$ignored = apply_filters(
		'igny8_bridge_ignored_meta_keys',
		array(
			'_edit_lock',
			'_edit_last',
			'_wp_old_slug',
			'_wp_old_date',
			'_wp_trash_meta_status',
			'_wp_trash_meta_time',
			'_wp_desired_post_slug',
			'_encloseme',
			'_pingme',
		)
	);
	return in_array( $meta_key, (array) $ignored, true );
}

/**
 * updated_post_meta / added_post_meta / deleted_post_meta.
 *
 * @param int|array $meta_id   Meta id(s).
 * @param int       $object_id Post id.
 * @param string    $meta_key  Meta key.
 */
function igny8_bridge_on_meta_change( $meta_id, $object_id, $meta_key ): void {
	if ( igny8_bridge_is_ignored_meta_key( (string) $meta_key ) ) {
		return;
	}
	$post = get_post( (int) $object_id );
	if ( igny8_bridge_is_trackable_post( $post ) ) {
		igny8_bridge_enqueue( 'metadata', (int) $object_id );
	}
}
add_action( 'updated_post_meta', 'igny8_bridge_on_meta_change', 10, 3 );
add_action( 'added_post_meta', 'igny8_bridge_on_meta_change', 10, 3 );
add_action( 'deleted_post_meta', 'igny8_bridge_on_meta_change', 10, 3 );

/**
 * Status webhook body.
 *
 * @param WP_Post $post       Post.
 * @param int     $content_id Service content id.
 */
function igny8_bridge_status_payload( WP_Post $post, int $content_id ): array {
	$url = get_permalink( $post );
	return array(
		'post_id'      => (int) $post->ID,
		'content_id'   => $content_id,
		'post_status'  => (string) $post->post_status,
		'post_url'     => $url ? $url : null,
		'post_type'    => (string) $post->post_type,
		'modified_gmt' => igny8_bridge_mysql_gmt_to_iso( $post->post_modified_gmt ),
	);
}

/**
 * Term names of a post in a taxonomy.
 *
 * @param int    $post_id  Post id.
 * @param string $taxonomy Taxonomy.
 * @return string[]
 */
function igny8_bridge_term_names( int $post_id, string $taxonomy ): array {
	$terms = get_the_terms( $post_id, $taxonomy );
	if ( ! is_array( $terms ) ) {
		return array();
	}
	return array_values( array_map( static fn( $t ) => (string) $t->name, $terms ) );
}

/**
 * SEO fields from Yoast SEO, Rank Math or SEOPress post meta (first plugin with data wins).
 * Filter `igny8_bridge_seo_metadata` to add others.
 *
 * @param int $post_id Post id.
 * @return array Possibly empty map of meta_title, meta_description, focus_keyword, canonical_url.
 */
function igny8_bridge_seo_metadata( int $post_id ): array {
	$sources = array(
		'yoast'    => array(
			'meta_title'       => '_yoast_wpseo_title',
			'meta_description' => '_yoast_wpseo_metadesc',
			'focus_keyword'    => '_yoast_wpseo_focuskw',
			'canonical_url'    => '_yoast_wpseo_canonical',
		),
		'rankmath' => array(
			'meta_title'       => 'rank_math_title',
			'meta_description' => 'rank_math_description',
			'focus_keyword'    => 'rank_math_focus_keyword',
			'canonical_url'    => 'rank_math_canonical_url',
		),
		'seopress' => array(
			'meta_title'       => '_seopress_titles_title',
			'meta_description' => '_seopress_titles_desc',
			'focus_keyword'    => '_seopress_analysis_target_kw',
			'canonical_url'    => '_seopress_robots_canonical',
		),
	);
	$seo = array();
	foreach ( $sources as $source => $map ) {
		foreach ( $map as $field => $key ) {
			$value = get_post_meta( $post_id, $key, true );
			if ( is_string( $value ) && '' !== $value ) {
				$seo[ $field ] = $value;
			}
		}
		if ( $seo ) {
			$seo['source'] = $source;
			break;
		}
	}
	return (array) apply_filters( 'igny8_bridge_seo_metadata', $seo, $post_id );
}

/**
 * Metadata webhook body. modified_gmt is sent at the top level and inside metadata.
 *
 * @param WP_Post $post       Post.
 * @param int     $content_id Service content id.
 */
function igny8_bridge_metadata_payload( WP_Post $post, int $content_id ): array {
	$post_id  = (int) $post->ID;
	$modified = igny8_bridge_mysql_gmt_to_iso( $post->post_modified_gmt );
	$taxes    = get_object_taxonomies( $post->post_type );

	$metadata = array(
		'categories' => in_array( 'category', $taxes, true ) ? igny8_bridge_term_names( $post_id, 'category' ) : array(),
		'tags'       => in_array( 'post_tag', $taxes, true ) ? igny8_bridge_term_names( $post_id, 'post_tag' ) : array(),
	);

	$other = array();
	foreach ( array_keys( igny8_bridge_enabled_taxonomies() ) as $tax ) {
		if ( 'category' !== $tax && 'post_tag' !== $tax && in_array( $tax, $taxes, true ) ) {
			$other[ $tax ] = igny8_bridge_term_names( $post_id, $tax );
		}
	}
	if ( $other ) {
		$metadata['taxonomies'] = $other;
	}

	$seo = igny8_bridge_seo_metadata( $post_id );
	if ( $seo ) {
		$metadata['seo'] = $seo;
	}
	$metadata['modified_gmt'] = $modified;

	return array(
		'post_id'      => $post_id,
		'content_id'   => $content_id,
		'metadata'     => $metadata,
		'modified_gmt' => $modified,
	);
}

/**
 * Sends the queued webhooks (runs at shutdown; tests may call it directly). Each post id is sent
 * at most once per kind; the queue is emptied.
 *
 * @return array List of {kind, post_id, webhook_id, outcome, status, message}.
 */
function igny8_bridge_flush_webhooks(): array {
	$queue = &igny8_bridge_queue();
	$sent  = array();
	if ( ! igny8_bridge_is_configured() ) {
		$queue['status']   = array();
		$queue['metadata'] = array();
		return $sent;
	}

	foreach ( array( 'status', 'metadata' ) as $kind ) {
		$items         = $queue[ $kind ];
		$queue[ $kind ] = array();
		foreach ( $items as $post_id => $item ) {
			if ( is_array( $item ) ) {
				$payload = $item;
			} else {
				clean_post_cache( (int) $post_id );
				$post = get_post( (int) $post_id );
				if ( ! igny8_bridge_is_trackable_post( $post ) ) {
					continue;
				}
				$content_id = igny8_bridge_get_content_id( (int) $post_id );
				if ( $content_id <= 0 ) {
					continue;
				}
				$payload = 'status' === $kind
					? igny8_bridge_status_payload( $post, $content_id )
					: igny8_bridge_metadata_payload( $post, $content_id );
			}
			$path   = 'status' === $kind ? IGNY8_BRIDGE_STATUS_PATH : IGNY8_BRIDGE_METADATA_PATH;
			$result = igny8_bridge_send_webhook( $path, $payload );
			$sent[] = array(
				'kind'    => $kind,
				'post_id' => (int) $post_id,
			) + $result;
		}
	}
	return $sent;
}
