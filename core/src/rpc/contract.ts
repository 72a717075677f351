import { loadContractRoot } from '@wanllmdb/proto';
import protobuf from 'protobufjs';
import { Errors } from '../errors.js';
import { installStructWrapper } from './struct-wrapper.js';

export type HttpVerb = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface HttpRoute {
  verb: HttpVerb;
  /** Path template from the proto, e.g. `/api/v1/projects/{id}`. */
  template: string;
  /** `*` (whole body is the request), a field name, or '' (no body). */
  body: string;
}

/** One RPC method, as the contract declares it. */
export interface MethodInfo {
  service: string;
  name: string;
  /** `wanllmdb.projects.v1.ProjectService/GetProject` */
  fullName: string;
  /** `/wanllmdb.projects.v1.ProjectService/GetProject` (the gRPC path) */
  path: string;
  /** The handler's property name: `getProject`. */
  handlerName: string;
  requestType: protobuf.Type;
  responseType: protobuf.Type;
  requestStream: boolean;
  responseStream: boolean;
  /** From `(wanllmdb.auth.v1.permission)`; '' when undeclared. */
  permission: string;
  /** From `(wanllmdb.auth.v1.resource)`: the resources a request names ([] when none). */
  resources: ResourceSpec[];
  /** From `(wanllmdb.auth.v1.ingest)`: a call a live run makes all the time (own rate budget, not audited one by one). */
  ingest: boolean;
  /** From `(wanllmdb.auth.v1.authorized_in_handler)`: how a method that names no resource narrows or authorises in its handler ('' when it does not). */
  authorizedInHandler: string;
  /** From `(wanllmdb.api.v1.http_status)`; 0 when undeclared. */
  httpStatus: number;
  httpRoutes: HttpRoute[];
}

/** One `<type>:<request field>` of a method's `(wanllmdb.auth.v1.resource)`. */
export interface ResourceSpec {
  type: string;
  /** The request field (camelCase, as the decoded request holds it). */
  field: string;
  repeated: boolean;
}

export const PERMISSION_OPTION = '(wanllmdb.auth.v1.permission)';
const RESOURCE_OPTION = '(wanllmdb.auth.v1.resource)';
const INGEST_OPTION = '(wanllmdb.auth.v1.ingest)';
const IN_HANDLER_OPTION = '(wanllmdb.auth.v1.authorized_in_handler)';
const HTTP_OPTION = '(google.api.http)';
const STATUS_OPTION = '(wanllmdb.api.v1.http_status)';
const VERBS: readonly HttpVerb[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];

interface HttpRuleOption {
  get?: string; post?: string; put?: string; patch?: string; delete?: string;
  body?: string;
  additional_bindings?: HttpRuleOption | HttpRuleOption[];
  additionalBindings?: HttpRuleOption | HttpRuleOption[];
}

function routesOf(rule: HttpRuleOption | undefined): HttpRoute[] {
  if (!rule) return [];
  const routes: HttpRoute[] = [];
  for (const verb of VERBS) {
    const template = rule[verb.toLowerCase() as Lowercase<HttpVerb>];
    if (template) routes.push({ verb, template, body: rule.body ?? '' });
  }
  const extra = rule.additional_bindings ?? rule.additionalBindings;
  for (const r of Array.isArray(extra) ? extra : extra ? [extra] : []) routes.push(...routesOf(r));
  return routes;
}

/** Parses `run:run_id,run:other_run_id` against the request type; a wrong field is a contract bug. */
function resourceSpecs(m: protobuf.Method, option: unknown): ResourceSpec[] {
  if (typeof option !== 'string' || !option.trim()) return [];
  return option.split(',').map((part) => {
    const [type, field] = part.trim().split(':');
    const f = type && field ? m.resolvedRequestType!.fields[field] ?? m.resolvedRequestType!.fields[camel(field)] : undefined;
    if (!f || f.type !== 'string') {
      throw Errors.RPC_PERMISSION_UNDECLARED(`${m.parent!.fullName.slice(1)}/${m.name} declares resource "${part.trim()}", but its request has no string field "${field}". Use "<type>:<string field>".`);
    }
    return { type: type!, field: f.name, repeated: f.repeated };
  });
}

const camel = (s: string) => s.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
const lowerFirst = (s: string) => s.charAt(0).toLowerCase() + s.slice(1);

/** The loaded contract: every service and method of proto/ and of the plugins' own folders, with its options read. */
export class Contract {
  readonly root: protobuf.Root;

  constructor(root?: protobuf.Root) {
    installStructWrapper();
    this.root = root ?? loadContractRoot();
  }

  service(fullName: string): protobuf.Service {
    const found = this.root.lookup(fullName);
    if (!(found instanceof protobuf.Service)) {
      throw Errors.RPC_SERVICE_UNKNOWN(`No service "${fullName}" in the proto contract. Check the name, and that its .proto file is under proto/wanllmdb/ or in the folder its plugin names as its proto.`);
    }
    return found;
  }

  methods(serviceFullName: string): MethodInfo[] {
    const svc = this.service(serviceFullName);
    return svc.methodsArray.map((m) => {
      m.resolve();
      const opts = m.options ?? {};
      const rule = (m.parsedOptions ?? []).find((o: Record<string, unknown>) => HTTP_OPTION in o)?.[HTTP_OPTION] as HttpRuleOption | undefined;
      return {
        service: serviceFullName,
        name: m.name,
        fullName: `${serviceFullName}/${m.name}`,
        path: `/${serviceFullName}/${m.name}`,
        handlerName: lowerFirst(m.name),
        requestType: m.resolvedRequestType!,
        responseType: m.resolvedResponseType!,
        requestStream: !!m.requestStream,
        responseStream: !!m.responseStream,
        permission: typeof opts[PERMISSION_OPTION] === 'string' ? (opts[PERMISSION_OPTION] as string) : '',
        resources: resourceSpecs(m, opts[RESOURCE_OPTION]),
        ingest: opts[INGEST_OPTION] === true,
        authorizedInHandler: typeof opts[IN_HANDLER_OPTION] === 'string' ? (opts[IN_HANDLER_OPTION] as string) : '',
        httpStatus: typeof opts[STATUS_OPTION] === 'number' ? (opts[STATUS_OPTION] as number) : 0,
        httpRoutes: routesOf(rule),
      };
    });
  }

  /** Every service declared under the `wanllmdb.` packages. */
  serviceNames(): string[] {
    const out: string[] = [];
    const walk = (ns: protobuf.NamespaceBase) => {
      for (const n of ns.nestedArray) {
        if (n instanceof protobuf.Service) out.push(n.fullName.slice(1));
        else if (n instanceof protobuf.Namespace) walk(n);
      }
    };
    walk(this.root);
    return out.filter((n) => n.startsWith('wanllmdb.')).sort();
  }
}
