<?php
/**
 * SEO fields: Yoast SEO's and Rank Math's post meta registered for the REST API, the `igny8_seo`
 * REST field (one object the service writes; stored in the active SEO plugin's keys and in
 * `_igny8_seo`), and, when no SEO plugin is active, the title, description, canonical and robots
 * printed by this plugin itself.
 *
 * @package Igny8_Bridge
 */

defined( 'ABSPATH' ) || exit;

define( 'IGNY8_BRIDGE_META_SEO', '_igny8_seo' );
define( 'IGNY8_BRIDGE_SEO_FIELD', 'igny8_seo' );

/**
 * Upper bounds of the text fields (characters), so a runaway value is refused, not stored.
 */
const IGNY8_BRIDGE_SEO_MAX_LENGTHS = array(
	'title'         => 1000,
	'description'   => 5000,
	'focus_keyword' => 1000,
	'canonical_url' => 2048,
);

/**
 * Meta keys per SEO plugin and igny8_seo field.
 */
const IGNY8_BRIDGE_SEO_KEYS = array(
	'yoast'     => array(
		'title'         => '_yoast_wpseo_title',
		'description'   => '_yoast_wpseo_metadesc',
		'focus_keyword' => '_yoast_wpseo_focuskw',
		'canonical_url' => '_yoast_wpseo_canonical',
		'noindex'       => '_yoast_wpseo_meta-robots-noindex',
	),
	'rank_math' => array(
		'title'         => 'rank_math_title',
		'description'   => 'rank_math_description',
		'focus_keyword' => 'rank_math_focus_keyword',
		'canonical_url' => 'rank_math_canonical_url',
		'noindex'       => 'rank_math_robots',
	),
);

/**
 * The active SEO plugin: 'yoast' (WPSEO_VERSION defined), 'rank_math' (RANK_MATH_VERSION) or
 * 'none'. With both active, Yoast is reported and read; igny8_seo writes go to both.
 */
function igny8_bridge_seo_plugin(): string {
	if ( defined( 'WPSEO_VERSION' ) ) {
		return 'yoast';
	}
	if ( defined( 'RANK_MATH_VERSION' ) ) {
		return 'rank_math';
	}
	return 'none';
}

/**
 * Post types that get the SEO meta and the igny8_seo field: every post type with show_in_rest.
 *
 * @return string[]
 */
function igny8_bridge_seo_post_types(): array {
	return array_values( get_post_types( array( 'show_in_rest' => true ) ) );
}

/**
 * auth_callback of the SEO meta keys.
 *
 * @param bool   $allowed  Default.
 * @param string $meta_key Meta key.
 * @param int    $post_id  Post id.
 */
function igny8_bridge_seo_meta_auth( $allowed, $meta_key, $post_id ): bool {
	return current_user_can( 'edit_post', (int) $post_id );
}

/**
 * Registers the Yoast and Rank Math keys and the igny8_seo REST field.
 */
function igny8_bridge_register_seo(): void {
	// Edit context only: a visitor reading a published post over REST sees none of them (the
	// focus keyword is editorial), as igny8_seo is null for a visitor.
	$string_meta = array(
		'type'              => 'string',
		'single'            => true,
		'show_in_rest'      => array( 'schema' => array( 'context' => array( 'edit' ) ) ),
		'sanitize_callback' => 'igny8_bridge_sanitize_seo_text',
		'auth_callback'     => 'igny8_bridge_seo_meta_auth',
	);
	$url_meta    = array_merge( $string_meta, array( 'sanitize_callback' => 'esc_url_raw' ) );
	$types       = igny8_bridge_seo_post_types();
	foreach ( $types as $post_type ) {
		foreach ( IGNY8_BRIDGE_SEO_KEYS as $plugin => $keys ) {
			register_post_meta( $post_type, $keys['title'], $string_meta );
			register_post_meta( $post_type, $keys['description'], $string_meta );
			register_post_meta( $post_type, $keys['focus_keyword'], $string_meta );
			register_post_meta( $post_type, $keys['canonical_url'], $url_meta );
		}
		// Yoast: '1' noindex, '2' index, '0' or absent the post type's default.
		register_post_meta(
			$post_type,
			IGNY8_BRIDGE_SEO_KEYS['yoast']['noindex'],
			array_merge(
				$string_meta,
				array(
					'sanitize_callback' => 'igny8_bridge_sanitize_yoast_noindex',
					'show_in_rest'      => array(
						'schema' => array(
							'type'    => 'string',
							'enum'    => array( '', '0', '1', '2' ),
							'context' => array( 'edit' ),
						),
					),
				)
			)
		);
		// Rank Math: a list of robots directives, e.g. ["noindex", "nofollow"].
		register_post_meta(
			$post_type,
			IGNY8_BRIDGE_SEO_KEYS['rank_math']['noindex'],
			array(
				'type'              => 'array',
				'single'            => true,
				'sanitize_callback' => 'igny8_bridge_sanitize_robots_list',
				'auth_callback'     => 'igny8_bridge_seo_meta_auth',
				'show_in_rest'      => array(
					'schema' => array(
						'type'    => 'array',
						'context' => array( 'edit' ),
						'items'   => array(
							'type'    => 'string',
							'pattern' => '^[a-z-]{1,40}$',
						),
					),
				),
			)
		);
	}

	register_rest_field(
		$types,
		IGNY8_BRIDGE_SEO_FIELD,
		array(
			'get_callback'    => 'igny8_bridge_seo_rest_get',
			'update_callback' => 'igny8_bridge_seo_rest_update',
			'schema'          => igny8_bridge_seo_schema(),
		)
	);
	// WordPress never calls an update_callback with null: "igny8_seo": null clears here instead.
	foreach ( $types as $post_type ) {
		add_action( "rest_after_insert_{$post_type}", 'igny8_bridge_seo_rest_after_insert', 10, 2 );
	}
}
add_action( 'init', 'igny8_bridge_register_seo', 999 );

/**
 * Schema of igny8_seo. The object is validated before the post is written (arg_options), so a
 * bad value is a 400 and creates nothing.
 */
function igny8_bridge_seo_schema(): array {
	$text = static function ( string $field ): array {
		return array(
			'type'      => array( 'string', 'null' ),
			'maxLength' => IGNY8_BRIDGE_SEO_MAX_LENGTHS[ $field ],
		);
	};
	return array(
		'description'          => __( 'SEO fields written to the active SEO plugin (Yoast SEO, Rank Math) or printed by IGNY8 Bridge. null for users who cannot edit the post.', 'igny8-bridge' ),
		'type'                 => array( 'object', 'null' ),
		'context'              => array( 'view', 'edit' ),
		'properties'           => array(
			'title'         => $text( 'title' ),
			'description'   => $text( 'description' ),
			'focus_keyword' => $text( 'focus_keyword' ),
			'canonical_url' => $text( 'canonical_url' ),
			'noindex'       => array( 'type' => array( 'boolean', 'null' ) ),
		),
		'additionalProperties' => false,
		'arg_options'          => array(
			'validate_callback' => 'igny8_bridge_seo_validate',
		),
	);
}

/**
 * validate_callback of igny8_seo: the schema's checks, then an absolute http(s) canonical URL.
 *
 * @param mixed           $value   Value.
 * @param WP_REST_Request $request Request.
 * @param string          $param   Parameter name.
 * @return true|WP_Error
 */
function igny8_bridge_seo_validate( $value, $request, $param ) {
	$valid = rest_validate_request_arg( $value, $request, $param );
	if ( true !== $valid ) {
		return $valid;
	}
	if ( is_array( $value ) && isset( $value['canonical_url'] ) && '' !== trim( (string) $value['canonical_url'] )
		&& ! igny8_bridge_is_http_url( trim( (string) $value['canonical_url'] ) ) ) {
		return new WP_Error(
			'rest_invalid_param',
			/* translators: %s: parameter name */
			sprintf( __( '%s[canonical_url] must be an absolute http(s) URL.', 'igny8-bridge' ), $param ),
			array( 'status' => 400 )
		);
	}
	return true;
}

/**
 * True for an absolute http:// or https:// URL with a host.
 *
 * @param string $url URL.
 */
function igny8_bridge_is_http_url( string $url ): bool {
	$parts = wp_parse_url( $url );
	return is_array( $parts ) && isset( $parts['scheme'], $parts['host'] )
		&& in_array( strtolower( $parts['scheme'] ), array( 'http', 'https' ), true )
		&& '' !== $parts['host'] && ! preg_match( '/\s/', $url );
}

/**
 * The normalized igny8_seo object: all five keys; trimmed strings, '' as null; noindex bool|null.
 *
 * @param mixed $value Raw value (array or object).
 * @return array{title: ?string, description: ?string, focus_keyword: ?string, canonical_url: ?string, noindex: ?bool}
 */
function igny8_bridge_seo_normalize( $value ): array {
	$value = is_object( $value ) ? (array) $value : ( is_array( $value ) ? $value : array() );
	$out   = array();
	foreach ( array( 'title', 'description', 'focus_keyword' ) as $field ) {
		$text          = isset( $value[ $field ] ) ? igny8_bridge_sanitize_seo_text( $value[ $field ] ) : '';
		$out[ $field ] = '' === $text ? null : $text;
	}
	$url                  = isset( $value['canonical_url'] ) && is_scalar( $value['canonical_url'] ) ? trim( (string) $value['canonical_url'] ) : '';
	$url                  = '' !== $url && igny8_bridge_is_http_url( $url ) ? esc_url_raw( $url, array( 'http', 'https' ) ) : '';
	$out['canonical_url'] = '' === $url ? null : $url;
	$out['noindex']       = isset( $value['noindex'] ) ? rest_sanitize_boolean( $value['noindex'] ) : null;
	return $out;
}

/**
 * One line of plain text: sanitize_text_field() without its removal of %xx sequences, which
 * would eat Yoast's and Rank Math's variables ("%%date%%", "%sep%"). Also the sanitize_callback
 * of the text keys, so it runs on the SEO plugins' own writes too: it must keep their values.
 *
 * @param mixed $value Value.
 */
function igny8_bridge_sanitize_seo_text( $value ): string {
	if ( ! is_scalar( $value ) ) {
		return '';
	}
	$text = wp_check_invalid_utf8( (string) $value );
	$text = wp_strip_all_tags( wp_pre_kses_less_than( $text ), true );
	return trim( (string) preg_replace( '/[\x00-\x1F\x7F]+/', ' ', $text ) );
}

/**
 * sanitize_callback of _yoast_wpseo_meta-robots-noindex.
 *
 * @param mixed $value Value.
 */
function igny8_bridge_sanitize_yoast_noindex( $value ): string {
	$value = is_scalar( $value ) ? (string) $value : '';
	return in_array( $value, array( '0', '1', '2' ), true ) ? $value : '';
}

/**
 * sanitize_callback of rank_math_robots: a list of lowercase directives.
 *
 * @param mixed $value Value.
 * @return string[]
 */
function igny8_bridge_sanitize_robots_list( $value ): array {
	$out = array();
	foreach ( (array) $value as $item ) {
		$item = strtolower( trim( (string) $item ) );
		if ( preg_match( '/^[a-z-]{1,40}$/', $item ) && ! in_array( $item, $out, true ) ) {
			$out[] = $item;
		}
	}
	return $out;
}

/**
 * Writes a normalized object: `_igny8_seo` always, and the keys of each active SEO plugin
 * (a null field deletes its key).
 *
 * @param int   $post_id Post id.
 * @param array $seo     Normalized object (igny8_bridge_seo_normalize).
 */
function igny8_bridge_seo_write( int $post_id, array $seo ): void {
	update_post_meta( $post_id, IGNY8_BRIDGE_META_SEO, wp_slash( $seo ) );

	$plugins = array();
	if ( defined( 'WPSEO_VERSION' ) ) {
		$plugins[] = 'yoast';
	}
	if ( defined( 'RANK_MATH_VERSION' ) ) {
		$plugins[] = 'rank_math';
	}
	foreach ( $plugins as $plugin ) {
		$keys = IGNY8_BRIDGE_SEO_KEYS[ $plugin ];
		foreach ( array( 'title', 'description', 'focus_keyword', 'canonical_url' ) as $field ) {
			if ( null === $seo[ $field ] ) {
				delete_post_meta( $post_id, $keys[ $field ] );
			} else {
				update_post_meta( $post_id, $keys[ $field ], wp_slash( $seo[ $field ] ) );
			}
		}
		if ( 'yoast' === $plugin ) {
			// As Yoast's own editor stores it: '1' noindex, '2' index, no row for the default.
			if ( null === $seo['noindex'] ) {
				delete_post_meta( $post_id, $keys['noindex'] );
			} else {
				update_post_meta( $post_id, $keys['noindex'], $seo['noindex'] ? '1' : '2' );
			}
			continue;
		}
		// Rank Math: keep other directives (nofollow, noarchive ...), set index or noindex.
		$robots = array_values(
			array_diff( igny8_bridge_sanitize_robots_list( get_post_meta( $post_id, $keys['noindex'], true ) ), array( 'index', 'noindex' ) )
		);
		if ( null === $seo['noindex'] && ! $robots ) {
			delete_post_meta( $post_id, $keys['noindex'] );
			continue;
		}
		if ( null !== $seo['noindex'] ) {
			array_unshift( $robots, $seo['noindex'] ? 'noindex' : 'index' );
		}
		update_post_meta( $post_id, $keys['noindex'], $robots );
	}
}

/**
 * Reads the object: from the active SEO plugin's keys, else from `_igny8_seo`.
 *
 * @param int $post_id Post id.
 * @return array{title: ?string, description: ?string, focus_keyword: ?string, canonical_url: ?string, noindex: ?bool}
 */
function igny8_bridge_seo_read( int $post_id ): array {
	$plugin = igny8_bridge_seo_plugin();
	if ( 'none' === $plugin ) {
		return igny8_bridge_seo_normalize( get_post_meta( $post_id, IGNY8_BRIDGE_META_SEO, true ) );
	}
	$keys = IGNY8_BRIDGE_SEO_KEYS[ $plugin ];
	$raw  = array();
	foreach ( array( 'title', 'description', 'focus_keyword', 'canonical_url' ) as $field ) {
		$raw[ $field ] = get_post_meta( $post_id, $keys[ $field ], true );
	}
	$seo = igny8_bridge_seo_normalize( $raw );
	if ( 'yoast' === $plugin ) {
		$flag           = (string) get_post_meta( $post_id, $keys['noindex'], true );
		$seo['noindex'] = '1' === $flag ? true : ( '2' === $flag ? false : null );
	} else {
		$robots         = igny8_bridge_sanitize_robots_list( get_post_meta( $post_id, $keys['noindex'], true ) );
		$seo['noindex'] = in_array( 'noindex', $robots, true ) ? true : ( in_array( 'index', $robots, true ) ? false : null );
	}
	return $seo;
}

/**
 * The post id of a REST object (posts controllers give an int id; others, e.g. templates, not).
 *
 * @param mixed $item Prepared object (array) or WP_Post.
 */
function igny8_bridge_seo_object_id( $item ): int {
	if ( $item instanceof WP_Post ) {
		return (int) $item->ID;
	}
	$id = is_array( $item ) && isset( $item['id'] ) ? $item['id'] : 0;
	return is_int( $id ) || ( is_string( $id ) && ctype_digit( $id ) ) ? (int) $id : 0;
}

/**
 * get_callback of igny8_seo: the object for users who can edit the post, else null.
 *
 * @param array $item Prepared post.
 * @return array|null
 */
function igny8_bridge_seo_rest_get( $item ) {
	$post_id = igny8_bridge_seo_object_id( $item );
	if ( ! $post_id || ! current_user_can( 'edit_post', $post_id ) ) {
		return null;
	}
	return igny8_bridge_seo_read( $post_id );
}

/**
 * update_callback of igny8_seo: replaces the stored object (absent keys are cleared).
 *
 * @param mixed   $value Validated value.
 * @param WP_Post $post  Post.
 * @return true|WP_Error
 */
function igny8_bridge_seo_rest_update( $value, $post ) {
	$post_id = igny8_bridge_seo_object_id( $post );
	if ( ! $post_id || ! current_user_can( 'edit_post', $post_id ) ) {
		return new WP_Error(
			'rest_cannot_edit',
			__( 'Sorry, you are not allowed to edit the SEO fields of this post.', 'igny8-bridge' ),
			array( 'status' => rest_authorization_required_code() )
		);
	}
	igny8_bridge_seo_write( $post_id, igny8_bridge_seo_normalize( $value ) );
	return true;
}

/**
 * "igny8_seo": null in a create or update request clears every field.
 *
 * @param WP_Post         $post    Post.
 * @param WP_REST_Request $request Request.
 */
function igny8_bridge_seo_rest_after_insert( $post, $request ): void {
	$params = $request->get_json_params();
	if ( ! is_array( $params ) || ! array_key_exists( IGNY8_BRIDGE_SEO_FIELD, $params ) || null !== $params[ IGNY8_BRIDGE_SEO_FIELD ] ) {
		return;
	}
	if ( $post instanceof WP_Post && current_user_can( 'edit_post', $post->ID ) ) {
		igny8_bridge_seo_write( (int) $post->ID, igny8_bridge_seo_normalize( array() ) );
	}
}

// -- the page's <head> when no SEO plugin is active -----------------------------------------------

/**
 * The stored SEO object of the singular page being shown, or null (no SEO plugin active only).
 *
 * @return array|null
 */
function igny8_bridge_seo_current(): ?array {
	if ( 'none' !== igny8_bridge_seo_plugin() || ! is_singular() ) {
		return null;
	}
	$post_id = (int) get_queried_object_id();
	if ( ! $post_id ) {
		return null;
	}
	$stored = get_post_meta( $post_id, IGNY8_BRIDGE_META_SEO, true );
	return is_array( $stored ) ? igny8_bridge_seo_normalize( $stored ) : null;
}

/**
 * pre_get_document_title: the SEO title (escaped: WordPress prints this filter's value as is).
 *
 * @param string $title Title so far ('' unless another filter set one).
 */
function igny8_bridge_seo_document_title( $title ) {
	$seo = igny8_bridge_seo_current();
	return $seo && null !== $seo['title'] ? esc_html( $seo['title'] ) : $title;
}
add_filter( 'pre_get_document_title', 'igny8_bridge_seo_document_title', 20 );

/**
 * get_canonical_url: the SEO canonical replaces core's (core prints the one rel=canonical tag).
 *
 * @param string  $url  Canonical URL.
 * @param WP_Post $post Post.
 */
function igny8_bridge_seo_canonical( $url, $post ) {
	$seo = igny8_bridge_seo_current();
	if ( ! $seo || null === $seo['canonical_url'] || ! $post instanceof WP_Post || (int) $post->ID !== (int) get_queried_object_id() ) {
		return $url;
	}
	return $seo['canonical_url'];
}
add_filter( 'get_canonical_url', 'igny8_bridge_seo_canonical', 20, 2 );

/**
 * wp_robots: noindex into core's one robots tag.
 *
 * @param array $robots Directives.
 */
function igny8_bridge_seo_robots( $robots ) {
	$seo = igny8_bridge_seo_current();
	if ( $seo && true === $seo['noindex'] ) {
		$robots['noindex'] = true;
		unset( $robots['index'] );
	}
	return $robots;
}
add_filter( 'wp_robots', 'igny8_bridge_seo_robots', 20 );

/**
 * wp_head: the meta description.
 */
function igny8_bridge_seo_head(): void {
	$seo = igny8_bridge_seo_current();
	if ( $seo && null !== $seo['description'] ) {
		printf( "<meta name=\"description\" content=\"%s\" />\n", esc_attr( $seo['description'] ) );
	}
}
add_action( 'wp_head', 'igny8_bridge_seo_head', 1 );
