// Types of the Personify web snippet (personify.js). Reference: docs/web.md.

export type Purpose = "personalization" | "profiling" | string;
export type Mode = "off" | "full" | "session";

export interface InitOptions {
  /** The tenant's public `browser` key (personify keys create NAME --scope browser). */
  apiKey: string;
  /** The API's base URL; "" (default) = the page's own origin. */
  host?: string;
  /** Purposes asked for and recorded on grant (default: personalization, profiling). */
  purposes?: Purpose[];
  /** The site's consent callback: call `decide(true | purposes)` to grant, `decide(false)` to
   * decline; or return (a promise of) that value. Nothing is stored or sent before a grant. */
  consent?: (decide: (granted: boolean | Purpose[]) => void) =>
    void | boolean | Purpose[] | Promise<boolean | Purpose[]>;
  /** Recorded with the consent decision (the banner text's version). */
  consentVersion?: string;
  /** Honour navigator.globalPrivacyControl as a refusal (default true). */
  honorGPC?: boolean;
  /** Site setting: false = never track (only session-only mode, if enabled). */
  tracking?: boolean;
  /** Visitors who decline (or send GPC) get recommendations from this visit only, kept in
   * sessionStorage and sent to POST /v1/recommendations/session; nothing is stored. */
  sessionOnly?: boolean;
  /** Link of an item in the default widget rendering, "{id}" replaced (e.g. "/p/{id}"). */
  itemUrl?: string;
  /** Send a page view when tracking starts (default true). */
  pageView?: boolean;
  /** Events per batch (default 20) and milliseconds between flushes (default 1000). */
  batchSize?: number;
  flushInterval?: number;
}

export interface EventProps {
  item_id?: string;
  item_ids?: string[];
  value?: number;
  price?: number;
  quantity?: number;
  currency?: string;
  order_id?: string;
  query?: string;
  recommendation_id?: string;
  properties?: Record<string, unknown>;
  event_id?: string;
}

export interface RecommendedItem {
  item_id: string;
  score: number;
  explanation?: string | null;
  item?: { title?: string; properties?: Record<string, unknown>; [field: string]: unknown } | null;
  [field: string]: unknown;
}

export interface Recommendations {
  recommendation_id: string;
  items: RecommendedItem[];
  [field: string]: unknown;
}

export interface PageRow {
  row_id: string;
  kind: string;
  title: string;
  reason: string;
  recommendation_id: string;
  position: number;
  propensity: number;
  items: RecommendedItem[];
  [field: string]: unknown;
}

export interface Page {
  page: string;
  page_id: string;
  rows: PageRow[];
  [field: string]: unknown;
}

export interface Personify {
  init(options: InitOptions): Personify;
  /** Any event type (built-in or a custom type the server knows); its event id, or null when
   * not tracking. */
  track(type: string, props?: EventProps): string | null;
  page(): string | null;
  viewItem(itemId: string, props?: EventProps): string | null;
  click(itemId: string, props?: EventProps): string | null;
  addToCart(itemId: string, props?: EventProps): string | null;
  purchase(itemId: string, props?: EventProps): string | null;
  /** At login: merge this browser's anonymous history into the user; needs a person token
   * minted by the site's backend (docs/security.md). */
  identify(userId: string, personToken: string): Promise<boolean>;
  /** At logout: a new anonymous id, no user. */
  reset(): void;
  flush(): Promise<void>;
  anonymousId(): string | null;
  recommend(options?: { widget?: string; n?: number; item?: string }):
    Promise<Recommendations | null>;
  /** A personalized page of rows for this visitor (GET /v1/pages/{name}); null unless
   * tracking with consent. */
  rows(name: string, options?: { language?: "en" | "ru" }): Promise<Page | null>;
  /** Render the widgets (data-personify-widget), pages of rows (data-personify-page) and
   * item views under root (default: document). */
  scan(root?: ParentNode): void;
  consent: {
    grant(purposes?: Purpose[]): Promise<boolean>;
    deny(options?: { sessionOnly?: boolean }): Promise<unknown>;
    withdraw(): Promise<unknown>;
    status(): Mode;
  };
}

declare const personify: Personify;
export default personify;

declare global {
  interface Window { personify: Personify; }
}
